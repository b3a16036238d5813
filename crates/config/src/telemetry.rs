//! One tracing set-up for every binary: `RUST_LOG` filter (default `info`), text or JSON.
//!
//! Never put API keys, webhook secrets or email addresses in a span or event.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;

/// Initialises the global subscriber, logging to standard output. Safe to call more than
/// once (tests do).
pub fn init(json: bool) {
    init_to(json, false);
}

/// The same, logging to standard error: for command-line tools whose standard output is
/// their result (a key, a secret) and may be captured by a script.
pub fn init_stderr(json: bool) {
    init_to(json, true);
}

fn init_to(json: bool, stderr: bool) {
    let writer = move || -> Box<dyn std::io::Write> {
        if stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,headless_chrome=warn"));
    let result = if json {
        fmt()
            .json()
            .with_writer(writer)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .try_init()
    } else {
        fmt()
            .with_writer(writer)
            .with_env_filter(filter)
            .with_target(false)
            .try_init()
    };
    // Already initialised (a second call in the same process): keep the first.
    drop(result);
}
