#![doc = include_str!("../README.md")]

pub mod http;
pub mod server;

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use server::{Check, Readiness, Served};

/// Requests answered by the api, by method, route pattern and status.
pub const HTTP_REQUESTS: &str = "enconvert_http_requests_total";
/// Time to answer an api request, by method and route pattern.
pub const HTTP_DURATION: &str = "enconvert_http_request_duration_seconds";
/// Render attempts that ended, by endpoint and outcome (`success`, `failed`, `requeued`).
pub const JOBS: &str = "enconvert_jobs_total";
/// Time one page took to render (browser work only), by endpoint and outcome.
pub const RENDER_DURATION: &str = "enconvert_render_duration_seconds";
/// Messages published with a confirm, by exchange and routing key.
pub const QUEUE_PUBLISHED: &str = "enconvert_queue_published_total";
/// Messages consumed, by queue and disposition (`ack`, `requeue`, `dead_letter`).
pub const QUEUE_CONSUMED: &str = "enconvert_queue_consumed_total";
/// Notification attempts, by channel (`webhook`, `email`) and outcome (`sent`, `retry`, `failed`).
pub const NOTIFICATION_ATTEMPTS: &str = "enconvert_notification_attempts_total";
/// Chromium processes launched by a worker.
pub const BROWSER_LAUNCHES: &str = "enconvert_browser_launches_total";
/// Chromium processes replaced, by reason (`failed`, `recycled`).
pub const BROWSER_RESTARTS: &str = "enconvert_browser_restarts_total";
/// Outbox rows waiting to be published (all processes' rows: the table is shared).
pub const OUTBOX_BACKLOG: &str = "enconvert_outbox_backlog";
/// Age of the oldest outbox row, seconds (0 when the outbox is empty).
pub const OUTBOX_OLDEST_AGE: &str = "enconvert_outbox_oldest_age_seconds";

/// Buckets of request latencies: milliseconds for most routes, up to the sync timeout.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 90.0, 120.0,
];
/// Buckets of render times: a simple page takes well under a second, the timeout is 60 s.
const RENDER_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle) and
/// describes every metric. Metrics recorded before this are dropped.
pub fn init() -> anyhow::Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(RENDER_DURATION.into()), RENDER_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    // Two callers racing: the loser's recorder is dropped and the winner's handle returned.
    if HANDLE.set(handle.clone()).is_err() {
        return HANDLE
            .get()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("metrics recorder vanished"));
    }
    metrics::set_global_recorder(recorder)
        .map_err(|e| anyhow::anyhow!("another metrics recorder is installed: {e}"))?;
    describe();
    // Histogram samples accumulate until rendered; drain them even when nobody scrapes.
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        })?;
    Ok(handle)
}

/// The Prometheus text of every metric recorded so far (empty before [`init`]).
pub fn render() -> String {
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

fn describe() {
    describe_counter!(HTTP_REQUESTS, "Requests answered by the api");
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an api request"
    );
    describe_counter!(JOBS, "Render attempts that ended, by outcome");
    describe_histogram!(
        RENDER_DURATION,
        metrics::Unit::Seconds,
        "Time the browser took to render one page"
    );
    describe_counter!(
        QUEUE_PUBLISHED,
        "Messages published and confirmed by RabbitMQ"
    );
    describe_counter!(QUEUE_CONSUMED, "Messages consumed, by disposition");
    describe_counter!(NOTIFICATION_ATTEMPTS, "Webhook and email attempts");
    describe_counter!(BROWSER_LAUNCHES, "Chromium processes launched");
    describe_counter!(BROWSER_RESTARTS, "Chromium processes replaced");
    describe_gauge!(OUTBOX_BACKLOG, "Outbox rows waiting to be published");
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        metrics::Unit::Seconds,
        "Age of the oldest outbox row"
    );
}

/// One api request answered. `route` is the matched pattern (`/v1/convert/status/{job_id}`),
/// never the raw path, so the series stay few.
pub fn http_request(method: &str, route: &str, status: u16, seconds: f64) {
    counter!(HTTP_REQUESTS, "method" => method.to_string(), "route" => route.to_string(), "status" => status.to_string()).increment(1);
    histogram!(HTTP_DURATION, "method" => method.to_string(), "route" => route.to_string())
        .record(seconds);
}

/// A render attempt ended: `success`, `failed` (final for the user) or `requeued`.
pub fn job(endpoint: &str, outcome: &'static str) {
    counter!(JOBS, "endpoint" => endpoint.to_string(), "outcome" => outcome).increment(1);
}

/// How long the browser worked on one page.
pub fn render_duration(endpoint: &str, outcome: &'static str, seconds: f64) {
    histogram!(RENDER_DURATION, "endpoint" => endpoint.to_string(), "outcome" => outcome)
        .record(seconds);
}

/// `n` messages published to `exchange` with `routing_key` and confirmed.
pub fn published(exchange: &str, routing_key: &str, n: u64) {
    counter!(QUEUE_PUBLISHED, "exchange" => exchange.to_string(), "routing_key" => routing_key.to_string()).increment(n);
}

/// A message of `queue` settled: `ack`, `requeue` or `dead_letter`.
pub fn consumed(queue: &str, disposition: &'static str) {
    counter!(QUEUE_CONSUMED, "queue" => queue.to_string(), "disposition" => disposition)
        .increment(1);
}

/// A notification attempt ended: `sent`, `retry` (another attempt is scheduled) or `failed`.
pub fn notification_attempt(channel: &str, outcome: &'static str) {
    counter!(NOTIFICATION_ATTEMPTS, "channel" => channel.to_string(), "outcome" => outcome)
        .increment(1);
}

/// A Chromium process was launched.
pub fn browser_launched() {
    counter!(BROWSER_LAUNCHES).increment(1);
}

/// A Chromium process is being replaced: `failed` or `recycled`.
pub fn browser_restarted(reason: &'static str) {
    counter!(BROWSER_RESTARTS, "reason" => reason).increment(1);
}

/// The outbox as last counted.
pub fn outbox(rows: u64, oldest_age_seconds: f64) {
    gauge!(OUTBOX_BACKLOG).set(rows as f64);
    gauge!(OUTBOX_OLDEST_AGE).set(oldest_age_seconds);
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn recorded_metrics_render_as_prometheus_text() {
        let handle = init().unwrap();
        assert!(init().is_ok(), "a second init returns the same recorder");
        job("url-to-pdf", "success");
        job("url-to-pdf", "success");
        render_duration("url-to-pdf", "success", 1.5);
        http_request("GET", "/v1/convert/status/{job_id}", 200, 0.02);
        outbox(3, 12.0);
        let text = handle.render();
        assert!(
            text.contains(r#"enconvert_jobs_total{endpoint="url-to-pdf",outcome="success"} 2"#),
            "{text}"
        );
        // Histograms, not summaries: buckets an alert can use.
        assert!(
            text.contains(
                r#"enconvert_render_duration_seconds_bucket{endpoint="url-to-pdf",outcome="success",le="2"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"route="/v1/convert/status/{job_id}",status="200"} 1"#),
            "{text}"
        );
        assert!(text.contains("enconvert_outbox_backlog 3"), "{text}");
        assert!(text.contains("# HELP enconvert_jobs_total"), "{text}");
        // The free function reads the same recorder.
        assert!(render().contains("enconvert_outbox_backlog 3"));
    }
}
