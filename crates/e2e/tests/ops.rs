//! Operations: every process's health and metrics listener, metrics that move when work is
//! done, readiness that follows PostgreSQL and RabbitMQ, and JSON logs.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use enconvert_e2e::peers::{HttpPeer, Reply, TcpProxy};
use enconvert_e2e::{Stack, StackOptions, metric};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(90);

fn page(token: &str) -> String {
    format!("<!doctype html><html><body><h1>Report {token}</h1></body></html>")
}

async fn get(url: &str) -> (u16, String, String) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ctype, resp.text().await.unwrap())
}

async fn scrape(base: &str) -> String {
    let (status, ctype, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200, "{text}");
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    text
}

/// Polls `/readyz` until its status is `want`; returns the last body.
async fn wait_ready(base: &str, want: u16, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (status, _, body) = match reqwest::get(format!("{base}/readyz")).await {
            Ok(r) => {
                let s = r.status().as_u16();
                (s, String::new(), r.text().await.unwrap_or_default())
            }
            Err(e) => (0, String::new(), e.to_string()),
        };
        if status == want {
            return serde_json::from_str(&body).unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base}/readyz still answers {status}, not {want}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls a process's metrics until `name{labels}` reaches at least `at_least`.
async fn wait_metric(
    base: &str,
    name: &str,
    labels: &[(&str, &str)],
    at_least: f64,
    within: Duration,
) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let text = scrape(base).await;
        if metric(&text, name, labels) >= at_least {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}{labels:?} stayed below {at_least}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_process_answers_health_and_metrics() {
    let stack = Stack::start(StackOptions::default()).await;
    for base in [&stack.api_ops, &stack.worker_ops, &stack.notifier_ops] {
        let (status, _, body) = get(&format!("{base}/healthz")).await;
        assert_eq!(status, 200, "{base}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["status"],
            "ok"
        );
        let ready = wait_ready(base, 200, WAIT).await;
        assert_eq!(
            ready,
            json!({"status": "ready", "database": "ok", "rabbitmq": "ok"}),
            "{base}"
        );
        let text = scrape(base).await;
        assert!(
            text.contains("# TYPE enconvert_outbox_backlog gauge"),
            "{base}: {text}"
        );
        let (status, _, _) = get(&format!("{base}/nothing")).await;
        assert_eq!(status, 404);
    }
    // The public port answers health, never metrics.
    let (status, _, body) = get(&format!("{}/healthz", stack.base)).await;
    assert_eq!(status, 200, "{body}");
    let ready = wait_ready(&stack.base, 200, WAIT).await;
    assert_eq!(ready["database"], "ok");
    let (status, _, body) = get(&format!("{}/metrics", stack.base)).await;
    assert_eq!(status, 404, "metrics are not public: {body}");
    // The api's listener saw that 404 with the route label of unmatched paths.
    let text = scrape(&stack.api_ops).await;
    assert!(
        metric(
            &text,
            "enconvert_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= 1.0,
        "{text}"
    );
    assert!(!text.contains("route=\"/metrics\""), "{text}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_move_when_work_is_done() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/report.html", vec![Reply::html(&page("M-1"))]);
    let hooks = HttpPeer::start().await;
    hooks.route("/hook", vec![Reply::status(200)]);
    let project = stack.project("pro", "owner@example.com").await;
    // The worker launched its browser at start.
    let before_worker = wait_metric(
        &stack.worker_ops,
        "enconvert_browser_launches_total",
        &[],
        1.0,
        WAIT,
    )
    .await;
    let before_api = scrape(&stack.api_ops).await;
    let before_notifier = scrape(&stack.notifier_ops).await;

    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({
                "url": site.url("/report.html"),
                "async_mode": true,
                "callback_url": hooks.url("/hook"),
                "notification_email": "team@example.com",
            }),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let batch_id = resp.json::<Value>().await.unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = stack
        .wait_batch(&project.private_key, &batch_id, WAIT)
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    let deliveries = stack
        .wait_deliveries(&project.private_key, &batch_id, 2, WAIT)
        .await;
    assert!(
        deliveries.iter().all(|d| d["status"] == "sent"),
        "{deliveries:?}"
    );

    let moved = |before: &str, after: &str, name: &str, labels: &[(&str, &str)]| {
        metric(after, name, labels) - metric(before, name, labels)
    };
    // Worker: one render, one job, one consumed render message, one published completion.
    let endpoint = [("endpoint", "url-to-pdf"), ("outcome", "success")];
    let worker = wait_metric(
        &stack.worker_ops,
        "enconvert_jobs_total",
        &endpoint,
        metric(&before_worker, "enconvert_jobs_total", &endpoint) + 1.0,
        WAIT,
    )
    .await;
    assert_eq!(
        moved(
            &before_worker,
            &worker,
            "enconvert_render_duration_seconds_count",
            &endpoint
        ),
        1.0,
        "{worker}"
    );
    assert!(
        metric(&worker, "enconvert_render_duration_seconds_sum", &endpoint) > 0.0,
        "{worker}"
    );
    assert_eq!(
        moved(
            &before_worker,
            &worker,
            "enconvert_queue_consumed_total",
            &[("queue", "render.batch"), ("disposition", "ack")]
        ),
        1.0
    );
    let published = |routing_key| {
        moved(
            &before_worker,
            &worker,
            "enconvert_queue_published_total",
            &[("routing_key", routing_key)],
        )
    };
    assert_eq!(published("render.batch"), 1.0, "{worker}");
    assert_eq!(published("job.completed"), 1.0, "{worker}");

    // Api: the submit and the polls, by route pattern and status; no raw id as a label.
    let api = scrape(&stack.api_ops).await;
    let post = [
        ("method", "POST"),
        ("route", "/v1/convert/url-to-pdf"),
        ("status", "202"),
    ];
    assert_eq!(
        moved(&before_api, &api, "enconvert_http_requests_total", &post),
        1.0,
        "{api}"
    );
    let poll = [
        ("method", "GET"),
        ("route", "/v1/convert/batch/{batch_id}"),
        ("status", "200"),
    ];
    assert!(
        moved(&before_api, &api, "enconvert_http_requests_total", &poll) >= 1.0,
        "{api}"
    );
    assert!(
        moved(
            &before_api,
            &api,
            "enconvert_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/v1/convert/url-to-pdf")]
        ) >= 1.0,
        "{api}"
    );
    assert!(!api.contains(&batch_id), "ids never become labels");

    // Notifier: one webhook and one email sent, and the event consumed.
    let notifier = scrape(&stack.notifier_ops).await;
    for channel in ["webhook", "email"] {
        assert_eq!(
            moved(
                &before_notifier,
                &notifier,
                "enconvert_notification_attempts_total",
                &[("channel", channel), ("outcome", "sent")]
            ),
            1.0,
            "{channel}: {notifier}"
        );
    }
    assert!(
        moved(
            &before_notifier,
            &notifier,
            "enconvert_queue_consumed_total",
            &[("queue", "notifier.events"), ("disposition", "ack")]
        ) >= 1.0,
        "{notifier}"
    );

    // A failing receiver counts as a retry.
    hooks.route("/down", vec![Reply::status(503)]);
    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/report.html"), "async_mode": true, "callback_url": hooks.url("/down")}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let retry = [("channel", "webhook"), ("outcome", "retry")];
    wait_metric(
        &stack.notifier_ops,
        "enconvert_notification_attempts_total",
        &retry,
        metric(&notifier, "enconvert_notification_attempts_total", &retry) + 1.0,
        WAIT,
    )
    .await;

    stack.stop().await;
}

/// Starts an api, a worker and a notifier of `stack`'s database and vhost, reaching
/// PostgreSQL and RabbitMQ through the proxies; returns their operations listeners.
async fn start_behind(
    stack: &Stack,
    pg: &TcpProxy,
    amqp: &TcpProxy,
    cancel: &CancellationToken,
) -> (String, String, String, String) {
    let mut settings = stack.settings.clone();
    settings.database_url =
        SecretString::from(format!("postgres://postgres@{}/{}", pg.addr, stack.name));
    settings.amqp_url =
        SecretString::from(format!("amqp://guest:guest@{}/{}", amqp.addr, stack.name));
    settings.db_pool_size = 2;
    let api = enconvert_api::start(&settings, cancel.clone())
        .await
        .unwrap();
    let worker = enconvert_worker::start(&settings, cancel.clone())
        .await
        .unwrap();
    let notifier = enconvert_notifier::start(&settings, cancel.clone())
        .await
        .unwrap();
    let url = |a: Option<std::net::SocketAddr>| format!("http://{}", a.unwrap());
    (
        format!("http://{}", api.addr),
        url(api.ops_addr),
        url(worker.ops_addr),
        url(notifier.ops_addr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_follows_postgres_and_rabbitmq() {
    // Only these processes, so nothing else drains the outbox while RabbitMQ is cut.
    let stack = Stack::start(StackOptions {
        processes: false,
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/report.html", vec![Reply::html(&page("R-1"))]);
    let project = stack.project("pro", "owner@example.com").await;
    let pg = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let amqp = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let cancel = CancellationToken::new();
    let (api, api_ops, worker_ops, notifier_ops) = start_behind(&stack, &pg, &amqp, &cancel).await;
    let all = [&api, &api_ops, &worker_ops, &notifier_ops];
    for base in all {
        wait_ready(base, 200, WAIT).await;
    }

    // PostgreSQL unreachable: every process is unready, and says why.
    pg.cut().await;
    for base in all {
        let body = wait_ready(base, 503, WAIT).await;
        assert_eq!(body["status"], "unavailable", "{base}: {body}");
        assert_eq!(body["database"], "down", "{base}: {body}");
        // Alive all the same: a restart would not help.
        let (status, _, _) = get(&format!("{base}/healthz")).await;
        assert_eq!(status, 200);
    }
    pg.restore().await;
    for base in all {
        let body = wait_ready(base, 200, WAIT).await;
        assert_eq!(body["database"], "ok", "{base}: {body}");
    }

    // RabbitMQ unreachable: the worker and notifier cannot work; the api still accepts work
    // into the outbox, so it stays ready and reports the broker down.
    amqp.cut().await;
    for base in [&worker_ops, &notifier_ops] {
        let body = wait_ready(base, 503, WAIT).await;
        assert_eq!(body["rabbitmq"], "down", "{base}: {body}");
        assert_eq!(body["database"], "ok", "{base}: {body}");
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _, body) = get(&format!("{api}/readyz")).await;
        assert_eq!(status, 200, "{body}");
        if serde_json::from_str::<Value>(&body).unwrap()["rabbitmq"] == "down" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Work accepted meanwhile waits in the outbox, and the backlog gauge shows it.
    let resp = reqwest::Client::new()
        .post(format!("{api}/v1/convert/url-to-pdf"))
        .header("X-API-Key", &project.private_key)
        .json(&json!({"url": site.url("/report.html"), "async_mode": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let batch_id = resp.json::<Value>().await.unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    let text = wait_metric(&api_ops, "enconvert_outbox_backlog", &[], 1.0, WAIT).await;
    assert!(
        metric(&text, "enconvert_outbox_oldest_age_seconds", &[]) > 0.0,
        "{text}"
    );
    amqp.restore().await;
    for base in [&worker_ops, &notifier_ops] {
        wait_ready(base, 200, WAIT).await;
    }
    // Back: the backlog drains and the job renders.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = scrape(&api_ops).await;
        if text.contains("enconvert_outbox_backlog 0\n") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status: Value = reqwest::Client::new()
            .get(format!("{api}/v1/convert/batch/{batch_id}"))
            .header("X-API-Key", &project.private_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["status"] == "completed" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Shutting down: unready while draining, then gone.
    cancel.cancel();
    let deadline = tokio::time::Instant::now() + WAIT;
    while reqwest::get(format!("{notifier_ops}/healthz"))
        .await
        .is_ok()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener outlived the process"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stack.stop().await;
}

/// Log lines written by the processes, captured in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_logs_carry_batch_and_job_ids_and_no_secrets() {
    let capture = Capture::default();
    let writer = capture.clone();
    enconvert_config::telemetry::init_with_filter(true, "info", move || writer.clone());
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/report.html", vec![Reply::html(&page("LOG-1"))]);
    let hooks = HttpPeer::start().await;
    hooks.route("/hook", vec![Reply::status(200)]);
    let owner = "owner.private@example.com";
    let team = "team.private@example.com";
    let project = stack.project("pro", owner).await;

    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({
                "url": site.url("/report.html"),
                "async_mode": true,
                "callback_url": hooks.url("/hook"),
                "notification_email": team,
            }),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let batch_id = resp.json::<Value>().await.unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = stack
        .wait_batch(&project.private_key, &batch_id, WAIT)
        .await;
    let job_id = status["items"][0]["job_id"].as_str().unwrap().to_string();
    stack
        .wait_deliveries(&project.private_key, &batch_id, 2, WAIT)
        .await;
    let secret = {
        let mut conn = stack.db.conn().await.unwrap();
        enconvert_db::webhook_secrets::current(&mut conn, project.id)
            .await
            .unwrap()
    };
    // A polled key in a query string is not logged either.
    let _ = stack
        .http
        .get(format!(
            "{}/v1/convert/batch/{batch_id}?api_key={}",
            stack.base, project.public_key
        ))
        .send()
        .await
        .unwrap();
    stack.stop().await;

    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 10, "{text}");
    for l in &lines {
        assert!(
            l["timestamp"].is_string() && l["level"].is_string() && l["fields"].is_object(),
            "{l}"
        );
    }
    let in_span = |name: &str| {
        lines.iter().any(|l| {
            l["span"]["name"] == name
                && l["span"]["batch.id"] == batch_id.as_str()
                && l["span"]["job.id"] == job_id.as_str()
        })
    };
    assert!(in_span("render"), "no render line with both ids:\n{text}");
    assert!(in_span("notify"), "no notify line with both ids:\n{text}");
    assert!(
        in_span("deliver"),
        "no delivery line with both ids:\n{text}"
    );
    for (what, needle) in [
        ("private key", project.private_key.as_str()),
        ("public key", project.public_key.as_str()),
        ("webhook secret", secret.as_str()),
        ("owner email", owner),
        ("notification email", team),
    ] {
        assert!(!text.contains(needle), "the logs contain the {what}");
    }
}
