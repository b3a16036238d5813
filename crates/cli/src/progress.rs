//! Waiting for a batch: polls its status with a progress bar on stderr (hidden when stderr
//! is not a terminal, or with `--quiet`).

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::{BatchStatus, Client, Unreachable};

/// The first and the longest pause between two polls.
const FIRST_POLL: Duration = Duration::from_millis(300);
const MAX_POLL: Duration = Duration::from_secs(2);

/// Polls `batch_id` until it is final; errors past `--timeout`. A lost connection is retried
/// (the batch goes on at the server); a refusal (the API's error) ends the wait.
pub async fn wait_batch(client: &Client, batch_id: &str) -> anyhow::Result<BatchStatus> {
    let bar = bar(client.quiet);
    let path = format!("/v1/convert/batch/{batch_id}");
    let mut pause = FIRST_POLL;
    let mut warned = false;
    let result = loop {
        match client.get_json::<BatchStatus>(&path).await {
            Ok(status) => {
                warned = false;
                show(&bar, &status);
                if status.is_final() {
                    break Ok(status);
                }
            }
            Err(e) if e.downcast_ref::<Unreachable>().is_none() => break Err(e),
            Err(e) => {
                if !warned && !client.quiet {
                    bar.suspend(|| eprintln!("warning: {e}; retrying"));
                }
                warned = true;
            }
        }
        if client.remaining() <= pause {
            bar.abandon();
            bail!(
                "batch {batch_id} is still processing after {} s (see --timeout); it goes on at the server: `enconvert status {batch_id}`",
                client.timeout.as_secs()
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_POLL);
    };
    bar.finish_and_clear();
    result
}

fn bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    // A spinner until the number of items is known (a website's pages are found first).
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(style("{spinner} {elapsed_precise} {msg}"));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message("waiting");
    bar
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn show(bar: &ProgressBar, s: &BatchStatus) {
    if s.total > 0 && bar.length().is_none() {
        bar.set_style(style(
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} {msg}",
        ));
    }
    if s.total > 0 {
        bar.set_length(s.total);
        bar.set_position(s.completed + s.failed);
    }
    let msg = if s.discovery.as_deref() == Some("in_progress") {
        "finding the site's pages".to_string()
    } else if s.total > 0 && s.in_progress == 0 && !s.is_final() {
        "building the ZIP".to_string()
    } else if s.failed > 0 {
        format!("{} failed", s.failed)
    } else {
        String::new()
    };
    bar.set_message(msg);
}
