//! End-to-end: the real api, worker and notifier against real PostgreSQL, RabbitMQ and
//! Chromium, with a local web server, an SMTP server and a webhook receiver.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use enconvert_e2e::peers::{HttpPeer, Reply, SmtpPeer};
use enconvert_e2e::{Stack, StackOptions, pdf_text};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn page(token: &str) -> String {
    format!(
        "<!doctype html><html><head><title>{token}</title></head><body><h1>Invoice {token}</h1><p>Total due: 42 EUR</p></body></html>"
    )
}

async fn bytes(url: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_pdf_reaches_polling_webhook_and_email() {
    let smtp = SmtpPeer::start();
    let stack = Stack::start(StackOptions {
        smtp: Some(smtp.addr),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/invoice.html", vec![Reply::html(&page("TOKEN-7F3A"))]);
    let hooks = HttpPeer::start().await;
    hooks.route("/hook", vec![Reply::status(200)]);
    let project = stack.project("pro", "owner@example.com").await;

    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({
                "url": site.url("/invoice.html"),
                "async_mode": true,
                "notification_email": "team@example.com",
                "callback_url": hooks.url("/hook"),
            }),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let accepted: Value = resp.json().await.unwrap();
    assert_eq!(accepted["status"], "processing");
    assert_eq!(accepted["url_count"], 1);
    assert_eq!(accepted["output_format"], "individual");
    let batch_id = accepted["batch_id"].as_str().unwrap().to_string();

    let status = stack
        .wait_batch(&project.private_key, &batch_id, WAIT)
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        (
            status["total"].as_u64(),
            status["completed"].as_u64(),
            status["failed"].as_u64(),
            status["in_progress"].as_u64()
        ),
        (Some(1), Some(1), Some(0), Some(0))
    );
    assert_eq!(status["output_mode"], "individual");
    assert!(status["zip_download_url"].is_null());
    let item = &status["items"][0];
    assert_eq!(item["status"], "Success");
    assert_eq!(item["source_url"], site.url("/invoice.html"));
    let duration: f64 = item["duration"].as_str().unwrap().parse().unwrap();
    assert!(duration > 0.0);

    let (code, pdf) = bytes(item["download_url"].as_str().unwrap()).await;
    assert_eq!(code, 200);
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    assert_eq!(item["output_file_size"].as_u64(), Some(pdf.len() as u64));
    let text = pdf_text(&pdf);
    assert!(text.contains("Invoice TOKEN-7F3A"), "PDF text: {text}");

    // The webhook: the seed's individual-mode payload.
    let seen = hooks.wait_for("/hook", 1, WAIT).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(
        seen[0].headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let hook: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(hook["status"], "success");
    assert_eq!(hook["batch_id"], batch_id.as_str());
    assert_eq!(hook["job_id"], item["job_id"]);
    assert_eq!(hook["file_size"].as_u64(), Some(pdf.len() as u64));
    let key = hook["gcs_uri"].as_str().unwrap();
    let filename = hook["filename"].as_str().unwrap();
    assert!(
        key.starts_with(&format!("dev/files/{}/url-to-pdf/127_0_0_1_", project.id)),
        "{key}"
    );
    assert!(key.ends_with(&format!("/{filename}")) && filename.ends_with(".pdf"));
    assert_eq!(
        hook.as_object().unwrap().len(),
        6,
        "exactly the seed's fields: {hook}"
    );

    // The email: to notification_email, not the owner.
    let mails = smtp.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt, vec!["team@example.com".to_string()]);
    assert!(
        mails[0].subject().contains("succeeded"),
        "{}",
        mails[0].subject()
    );
    assert!(mails[0].html().contains(&batch_id));

    // The job status endpoint agrees.
    let job: Value = stack
        .get(
            &project.private_key,
            &format!("/v1/convert/status/{}", item["job_id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["status"], "success");
    assert_eq!(job["object_key"], key);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn screenshot_is_a_png_at_the_viewport_width() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("SHOT"))]);
    let project = stack.project("starter", "owner@example.com").await;
    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-screenshot",
            &json!({"url": site.url("/p"), "async_mode": true, "viewport_width": 800, "viewport_height": 600}),
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
    let (_, data) = bytes(status["items"][0]["download_url"].as_str().unwrap()).await;
    let decoder = png::Decoder::new(std::io::Cursor::new(data));
    let reader = decoder.read_info().unwrap();
    assert_eq!(reader.info().width, 800);
    assert!(
        reader.info().height >= 600,
        "full page at least the viewport"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_with_a_failing_page_is_partial() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/ok", vec![Reply::html(&page("OK"))]);
    site.route("/missing", vec![Reply::status(404)]);
    let hooks = HttpPeer::start().await;
    hooks.route("/hook", vec![Reply::status(204)]);
    let project = stack.project("enterprise", "owner@example.com").await;
    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": [site.url("/ok"), site.url("/missing")], "callback_url": hooks.url("/hook")}),
        )
        .await;
    assert_eq!(resp.status(), 202, "several URLs force async");
    let accepted: Value = resp.json().await.unwrap();
    assert_eq!(accepted["url_count"], 2);
    let status = stack
        .wait_batch(
            &project.private_key,
            accepted["batch_id"].as_str().unwrap(),
            WAIT,
        )
        .await;
    assert_eq!(status["status"], "partial", "{status}");
    assert_eq!(
        (status["completed"].as_u64(), status["failed"].as_u64()),
        (Some(1), Some(1))
    );
    let failed = &status["items"][1];
    assert_eq!(failed["status"], "Failed");
    assert!(failed["download_url"].is_null());
    assert_eq!(failed["error"], "The page answered HTTP 404");

    let seen = hooks.wait_for("/hook", 2, WAIT).await;
    assert_eq!(seen.len(), 2, "one webhook per URL");
    let mut bodies: Vec<Value> = seen
        .iter()
        .map(|s| serde_json::from_slice(&s.body).unwrap())
        .collect();
    bodies.sort_by_key(|b| b["status"].as_str().unwrap().to_string());
    assert_eq!(bodies[0]["status"], "failed");
    assert_eq!(bodies[0]["error"], "The page answered HTTP 404");
    assert!(bodies[0].get("gcs_uri").is_none());
    assert_eq!(bodies[1]["status"], "success");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn owner_gets_the_email_by_default_and_sync_answers_directly() {
    let smtp = SmtpPeer::start();
    let stack = Stack::start(StackOptions {
        smtp: Some(smtp.addr),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("SYNC-9"))]);
    let project = stack.project("starter", "owner@example.com").await;

    // Sync (the default): 200 with a link, pollable by the client's job_id.
    let resp = stack
        .post(&project.private_key, "/v1/convert/url-to-pdf", &json!({"url": site.url("/p"), "job_id": "invoice-42", "output_filename": "my invoice.pdf"}))
        .await;
    assert_eq!(resp.status(), 200);
    let done: Value = resp.json().await.unwrap();
    assert_eq!(done["job_id"], "invoice-42");
    assert!(
        done["filename"]
            .as_str()
            .unwrap()
            .starts_with("my_invoice_")
    );
    let (_, pdf) = bytes(done["presigned_url"].as_str().unwrap()).await;
    assert!(pdf_text(&pdf).contains("Invoice SYNC-9"));
    assert_eq!(done["file_size"].as_u64(), Some(pdf.len() as u64));
    let job: Value = stack
        .get(&project.public_key, "/v1/convert/status/invoice-42")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["status"], "success");

    // Sync with direct_download: the bytes and the X- headers.
    let resp = stack
        .post(
            &project.public_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/p"), "direct_download": true}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    let size: usize = resp.headers()["x-file-size"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=")
    );
    assert!(resp.headers().contains_key("x-object-key") && resp.headers().contains_key("x-job-id"));
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), size);
    assert!(body.starts_with(b"%PDF-"));

    // Async without notification_email: the owner is told. Sync jobs sent no email.
    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/p"), "async_mode": true}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let mails = smtp.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        smtp.mails().len(),
        1,
        "exactly one email: sync jobs send none"
    );
    assert_eq!(mails[0].rcpt, vec!["owner@example.com".to_string()]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_clear_errors() {
    let stack = Stack::start(StackOptions::default()).await;
    let project = stack.project("starter", "owner@example.com").await;
    let other = stack.project("pro", "other@example.com").await;
    let url = "/v1/convert/url-to-pdf";
    let ok_target = "http://127.0.0.1:9/p";

    let check = |resp: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(resp.status().as_u16(), status);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], code, "{body}");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        body
    };
    // 401: missing, unknown, malformed keys all look the same.
    let resp = stack
        .http
        .post(format!("{}{url}", stack.base))
        .json(&json!({"url": ok_target}))
        .send()
        .await
        .unwrap();
    let missing = check(resp, 401, "invalid_api_key").await;
    let unknown = check(
        stack
            .post(
                "sk_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                url,
                &json!({"url": ok_target}),
            )
            .await,
        401,
        "invalid_api_key",
    )
    .await;
    assert_eq!(missing, unknown);
    // 400: private targets, bad schemes, wrong types (named).
    let body = check(
        stack
            .post(
                &project.private_key,
                url,
                &json!({"url": "http://127.0.0.2/", "async_mode": true}),
            )
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("private"),
        "{body}"
    );
    check(
        stack
            .post(
                &project.private_key,
                url,
                &json!({"url": "file:///etc/passwd", "async_mode": true}),
            )
            .await,
        400,
        "invalid_request",
    )
    .await;
    let body = check(
        stack
            .post(
                &project.private_key,
                url,
                &json!({"url": ok_target, "async_mode": "yes"}),
            )
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("async_mode"),
        "{body}"
    );
    let resp = stack
        .http
        .post(format!("{}{url}", stack.base))
        .header("X-API-Key", &project.private_key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    check(resp, 400, "invalid_request").await;
    // 413
    let big = json!({"url": ok_target, "pad": "x".repeat(2 * 1024 * 1024)});
    check(
        stack.post(&project.private_key, url, &big).await,
        413,
        "payload_too_large",
    )
    .await;
    // 403: a public key asking for async; a plan without webhooks.
    let body = check(
        stack
            .post(
                &project.public_key,
                url,
                &json!({"url": ok_target, "async_mode": true}),
            )
            .await,
        403,
        "forbidden",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("public key"));
    let body = check(stack.post(&project.private_key, url, &json!({"url": ok_target, "async_mode": true, "callback_url": "http://127.0.0.1:9/hook"})).await, 403, "forbidden").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Webhook callbacks (callback_url) is not available on your current plan")
    );
    // 404: another project's batch, an unknown batch.
    let resp = stack
        .post(
            &other.private_key,
            url,
            &json!({"url": ok_target, "async_mode": true}),
        )
        .await;
    let foreign = resp.json::<Value>().await.unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    check(
        stack
            .get(
                &project.private_key,
                &format!("/v1/convert/batch/{foreign}"),
            )
            .await,
        404,
        "not_found",
    )
    .await;
    check(
        stack
            .get(&project.private_key, "/v1/convert/batch/not-a-uuid")
            .await,
        404,
        "not_found",
    )
    .await;
    // 409: a job_id already used.
    let first = stack
        .post(
            &project.private_key,
            url,
            &json!({"url": ok_target, "async_mode": true, "job_id": "dup-1"}),
        )
        .await;
    assert_eq!(first.status(), 202);
    let body = check(
        stack
            .post(
                &project.private_key,
                url,
                &json!({"url": ok_target, "async_mode": true, "job_id": "dup-1"}),
            )
            .await,
        409,
        "job_id_in_use",
    )
    .await;
    assert_eq!(body["detail"], "job_id already in use");
    // A tampered download link.
    let (code, _) = bytes(&format!(
        "{}/v1/files/dev/files/x.pdf?expires=9999999999&signature=AAAA",
        stack.base
    ))
    .await;
    assert_eq!(code, 403);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicated_render_message_renders_once_and_notifies_once() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("ONCE"))]);
    let hooks = HttpPeer::start().await;
    hooks.route("/hook", vec![Reply::status(200)]);
    let project = stack.project("pro", "owner@example.com").await;
    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/p"), "async_mode": true, "callback_url": hooks.url("/hook")}),
        )
        .await;
    let batch_id = resp.json::<Value>().await.unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = stack
        .wait_batch(&project.private_key, &batch_id, WAIT)
        .await;
    assert_eq!(status["status"], "completed");

    // Publish the same render message and the same completion event again, as a relay that
    // died between publishing and deleting would.
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        let mut conn = stack.db.conn().await.unwrap();
        let job = enconvert_db::batches::jobs_of(&mut conn, batch_id.parse().unwrap())
            .await
            .unwrap()
            .remove(0);
        let render = enconvert_queue::messages::render(
            &enconvert_domain::events::RenderJob {
                job_id: job.id,
                batch_id: job.batch_id,
            },
            false,
        );
        let event =
            enconvert_queue::messages::job_completed(&enconvert_domain::events::JobCompleted {
                job_id: job.id,
                batch_id: job.batch_id,
                project_id: job.project_id,
                status: enconvert_domain::JobStatus::Success,
                output_mode: enconvert_domain::OutputMode::Individual,
            });
        enconvert_db::outbox::insert(&mut conn, &[render, event])
            .await
            .unwrap();
        // Wait until both were published.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left: i64 = enconvert_db::schema::outbox::table
                .count()
                .get_result(&mut conn)
                .await
                .unwrap();
            if left == 0 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut conn = stack.db.conn().await.unwrap();
    let job = enconvert_db::batches::jobs_of(&mut conn, batch_id.parse().unwrap())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(job.attempts, 1, "rendered once");
    assert_eq!(site.seen("/p").len(), 1, "the page was fetched once");
    assert_eq!(hooks.seen("/hook").len(), 1, "one webhook");
    stack.stop().await;
}
