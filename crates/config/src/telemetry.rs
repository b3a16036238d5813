//! One tracing set-up for every binary: `RUST_LOG` filter (default `info`), text or JSON.
//!
//! In JSON each line is one event: `timestamp`, `level`, `fields` (the message and the
//! event's fields), `target`, and `span`, the innermost span with its fields; the worker's
//! and notifier's spans carry `batch.id` and `job.id`.
//!
//! Never put API keys, webhook secrets or email addresses in a span or event.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::fmt::MakeWriter;

/// Initialises the global subscriber, logging to standard output. Safe to call more than
/// once (tests do).
pub fn init(json: bool) {
    init_with_writer(json, std::io::stdout);
}

/// The same, logging to standard error: for command-line tools whose standard output is
/// their result (a key, a secret) and may be captured by a script.
pub fn init_stderr(json: bool) {
    init_with_writer(json, std::io::stderr);
}

/// The same, logging to `writer`. The first call in a process wins; later calls change
/// nothing.
pub fn init_with_writer<W>(json: bool, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,headless_chrome=warn"));
    install(json, filter, writer);
}

/// With a fixed filter instead of `RUST_LOG` (tests that read the lines they capture).
pub fn init_with_filter<W>(json: bool, filter: &str, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    install(json, EnvFilter::new(filter), writer);
}

fn install<W>(json: bool, filter: EnvFilter, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
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
