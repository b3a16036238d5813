//! One tracing set-up for every binary: `RUST_LOG` filter (default `info`), text or JSON.
//!
//! Never put API keys, webhook secrets or email addresses in a span or event.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;

/// Initialises the global subscriber. Safe to call more than once (tests do).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,headless_chrome=warn"));
    let result = if json {
        fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .try_init()
    } else {
        fmt().with_env_filter(filter).with_target(false).try_init()
    };
    // Already initialised (a second call in the same process): keep the first.
    drop(result);
}
