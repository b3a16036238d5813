//! End-to-end: the real api, worker and notifier against real PostgreSQL, RabbitMQ and
//! Chromium, with a local web server, an SMTP server and a webhook receiver.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use enconvert_e2e::peers::{HttpPeer, Reply, SmtpPeer};
use enconvert_e2e::{Stack, StackOptions, WAIT, fetch, page, pdf_text};
use serde_json::{Value, json};

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

    let (code, pdf) = fetch(item["download_url"].as_str().unwrap()).await;
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
    let (_, data) = fetch(status["items"][0]["download_url"].as_str().unwrap()).await;
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
    let (_, pdf) = fetch(done["presigned_url"].as_str().unwrap()).await;
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
    let (code, _) = fetch(&format!(
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

// ---------------------------------------------------------------------------------------
// The v1 contract: ZIP output, render options, target errors.

/// Renders one page to a PDF through the whole stack and returns its bytes.
async fn pdf_of(stack: &Stack, key: &str, body: Value) -> Vec<u8> {
    let mut body = body;
    body["async_mode"] = json!(true);
    let status = stack
        .submit_and_wait(key, "/v1/convert/url-to-pdf", &body)
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    fetch(status["items"][0]["download_url"].as_str().unwrap())
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zip_output_holds_the_successful_pages() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/a", vec![Reply::html(&page("ALPHA"))]);
    site.route("/b", vec![Reply::html(&page("BRAVO"))]);
    site.route("/gone", vec![Reply::status(500)]);
    let project = stack.project("starter", "owner@example.com").await;
    let status = stack.submit_and_wait(&project.private_key, "/v1/convert/url-to-pdf", &json!({"url": [site.url("/a"), site.url("/b"), site.url("/gone")], "output_format": true}))
    .await;
    assert_eq!(status["status"], "partial", "{status}");
    assert_eq!(status["output_mode"], "zip");
    assert!(
        status["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["download_url"].is_null()),
        "ZIP mode has no per-item links"
    );
    assert_eq!(status["items"][2]["error"], "The page answered HTTP 500");
    let link = status["zip_download_url"]
        .as_str()
        .expect("a ZIP link once complete");
    let (code, zip) = fetch(link).await;
    assert_eq!(code, 200);
    let reader = async_zip::base::read::mem::ZipFileReader::new(zip)
        .await
        .unwrap();
    let entries = reader.file().entries().len();
    assert_eq!(entries, 2, "failed items are left out");
    let mut texts = Vec::new();
    for i in 0..entries {
        let name = reader.file().entries()[i]
            .filename()
            .as_str()
            .unwrap()
            .to_string();
        assert!(name.ends_with(".pdf"), "{name}");
        let mut entry = reader.reader_with_entry(i).await.unwrap();
        let mut data = Vec::new();
        entry.read_to_end_checked(&mut data).await.unwrap();
        texts.push(pdf_text(&data));
    }
    assert!(texts.iter().any(|t| t.contains("Invoice ALPHA")));
    assert!(texts.iter().any(|t| t.contains("Invoice BRAVO")));
    stack.stop().await;
}

/// Pages are laid out as in a desktop browser: the requested viewport (given by emulation;
/// Chromium's own window stays at its headless default) and a mouse, not headless
/// Chromium's "no pointer, no hover".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_see_the_requested_viewport_and_a_desktop_mouse() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route(
        "/probe",
        vec![Reply::html(
            "<html><body><script>document.write(['width', innerWidth, 'height', innerHeight, \
             matchMedia('(hover: hover)').matches ? 'hover' : 'nohover', \
             matchMedia('(pointer: fine)').matches ? 'finepointer' : 'nofinepointer'].join('-'))\
             </script></body></html>",
        )],
    );
    let project = stack.project("starter", "owner@example.com").await;
    let key = &project.private_key;
    let default = pdf_text(&pdf_of(&stack, key, json!({"url": site.url("/probe")})).await);
    assert!(
        default.contains("width-1920-height-1080-hover-finepointer"),
        "default viewport: {default:?}"
    );
    let narrow = pdf_text(
        &pdf_of(
            &stack,
            key,
            json!({"url": site.url("/probe"), "viewport_width": 1024, "viewport_height": 700}),
        )
        .await,
    );
    assert!(
        narrow.contains("width-1024-height-700-hover-finepointer"),
        "viewport 1024x700: {narrow:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pdf_layout_options_change_the_output() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    let long: String = (1..=120)
        .map(|i| format!("<p>Line number {i} of a long report</p>"))
        .collect();
    site.route(
        "/long",
        vec![Reply::html(&format!("<html><body>{long}</body></html>"))],
    );
    site.route(
        "/tall",
        vec![Reply::html(
            "<html><body style=\"margin:0\"><div style=\"height:120000px\">tall</div></body></html>",
        )],
    );
    site.route("/red", vec![Reply::html("<html><body style=\"background:#ff0000;margin:0\"><div style=\"height:400px\"></div></body></html>")]);
    let project = stack.project("starter", "owner@example.com").await;
    let key = &project.private_key;

    // Paginated A4 portrait vs landscape.
    let portrait = pdf_of(
        &stack,
        key,
        json!({"url": site.url("/long"), "single_page": false}),
    )
    .await;
    let (pages, w, h) = enconvert_e2e::pdf_info(&portrait);
    assert!(
        pages > 1 && (w - 595.0).abs() < 2.0 && (h - 842.0).abs() < 2.0,
        "A4 portrait: {pages} {w}x{h}"
    );
    let landscape = pdf_of(&stack, key, json!({"url": site.url("/long"), "single_page": false, "pdf_options": {"orientation": "landscape"}})).await;
    let (_, w, h) = enconvert_e2e::pdf_info(&landscape);
    assert!(w > h, "landscape is wider than tall: {w}x{h}");

    // Header and footer on every page, with the right numbers.
    let banded = pdf_of(
        &stack,
        key,
        json!({"url": site.url("/long"), "single_page": false,
               "pdf_options": {"header": {"content": "ACME report"}, "footer": {"content": "Page {page} of {total_pages}"}}}),
    )
    .await;
    let (pages, _, _) = enconvert_e2e::pdf_info(&banded);
    assert!(pages >= 2);
    let text = pdf_text(&banded);
    let per_page: Vec<&str> = text
        .split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .collect();
    assert_eq!(per_page.len() as u32, pages);
    for (i, p) in per_page.iter().enumerate() {
        assert!(p.contains("ACME report"), "header on page {}", i + 1);
        assert!(
            p.contains(&format!("Page {} of {pages}", i + 1)),
            "footer on page {}: {p}",
            i + 1
        );
    }

    // Single page: one page as tall as the content; margins and scale change its box.
    let single = pdf_of(&stack, key, json!({"url": site.url("/long"), "pdf_options": {"margins": {"top": 0, "bottom": 0, "left": 0, "right": 0}}})).await;
    let (pages, w0, h0) = enconvert_e2e::pdf_info(&single);
    assert_eq!(pages, 1);
    assert!(h0 > 842.0, "taller than A4: {h0}");
    let margined = pdf_of(&stack, key, json!({"url": site.url("/long"), "pdf_options": {"margins": {"top": 20, "bottom": 20, "left": 20, "right": 20}}})).await;
    let (_, w1, _) = enconvert_e2e::pdf_info(&margined);
    assert!(
        (w1 - w0 - 40.0 / 25.4 * 72.0).abs() < 2.0,
        "40 mm of margins widen the page: {w0} -> {w1}"
    );
    let scaled = pdf_of(&stack, key, json!({"url": site.url("/long"), "pdf_options": {"scale": 0.5, "margins": {"top": 0, "bottom": 0, "left": 0, "right": 0}}})).await;
    let (_, w2, h2) = enconvert_e2e::pdf_info(&scaled);
    assert!(
        w2 < w0 * 0.6 && h2 < h0,
        "scale 0.5 shrinks the page: {w0}x{h0} -> {w2}x{h2}"
    );
    // Content taller than a PDF page may be (65,535 pt, some 87,000 CSS px) is split over
    // as few pages as hold it, each as tall as allowed (Chromium fails a taller page).
    let tall = pdf_of(&stack, key, json!({"url": site.url("/tall")})).await;
    let (pages, _, h3) = enconvert_e2e::pdf_info(&tall);
    assert!(
        pages == 2 && h3 > 60_000.0 && h3 <= 65_535.0,
        "120,000 px on one page: {pages} pages of {h3} pt"
    );

    // Grayscale: a red page has no colour left.
    let colour = pdf_of(&stack, key, json!({"url": site.url("/red")})).await;
    let gray = pdf_of(
        &stack,
        key,
        json!({"url": site.url("/red"), "pdf_options": {"grayscale": true}}),
    )
    .await;
    assert!(max_saturation(&colour) > 200, "the control page is red");
    assert!(max_saturation(&gray) < 10, "grayscale leaves no colour");
    stack.stop().await;
}

/// The largest difference between colour channels of any pixel of the PDF's first page.
fn max_saturation(pdf: &[u8]) -> u8 {
    let dir = std::env::temp_dir().join(format!("enc-raster-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("in.pdf"), pdf).unwrap();
    let ok = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "20", "-f", "1", "-l", "1", "-singlefile"])
        .arg(dir.join("in.pdf"))
        .arg(dir.join("out"))
        .status()
        .unwrap()
        .success();
    assert!(ok, "pdftoppm");
    let data = std::fs::read(dir.join("out.png")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut reader = png::Decoder::new(std::io::Cursor::new(data))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    if channels < 3 {
        return 0;
    }
    buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| p[0].max(p[1]).max(p[2]) - p[0].min(p[1]).min(p[2]))
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loading_options_change_what_is_captured() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    let project = stack.project("starter", "owner@example.com").await;
    let key = &project.private_key;
    let tiny_png = {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 1, 1);
        enc.set_color(png::ColorType::Rgb);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[0, 128, 255]).unwrap();
        drop(w);
        out
    };

    // wait_for_selector: content that JavaScript adds late.
    site.route("/late", vec![Reply::html("<html><body><p>early</p><script>setTimeout(() => { const d = document.createElement('div'); d.id = 'late'; d.textContent = 'LATE-CONTENT-81'; document.body.appendChild(d); }, 1200);</script></body></html>")]);
    let with = pdf_text(
        &pdf_of(
            &stack,
            key,
            json!({"url": site.url("/late"), "wait_for_selector": "#late"}),
        )
        .await,
    );
    assert!(with.contains("LATE-CONTENT-81"), "{with}");
    let without = pdf_text(
        &pdf_of(
            &stack,
            key,
            json!({"url": site.url("/late"), "enable_scroll": false}),
        )
        .await,
    );
    assert!(
        !without.contains("LATE-CONTENT-81"),
        "control: without the wait the content is missing"
    );

    // enable_scroll: an image loaded only when scrolled into view.
    let lazy = "<html><body><div style=\"height:5000px\">top</div><img id=\"x\" data-src=\"/lazy.png\" width=\"10\" height=\"10\"><script>new IntersectionObserver((es) => es.forEach(e => { if (e.isIntersecting) e.target.src = e.target.dataset.src; })).observe(document.getElementById('x'));</script></body></html>";
    site.route("/lazy", vec![Reply::html(lazy)]);
    site.route("/lazy.png", vec![Reply::png(tiny_png.clone())]);
    pdf_of(
        &stack,
        key,
        json!({"url": site.url("/lazy"), "enable_scroll": false}),
    )
    .await;
    assert_eq!(
        site.seen("/lazy.png").len(),
        0,
        "without scrolling the lazy image is not requested"
    );
    pdf_of(&stack, key, json!({"url": site.url("/lazy")})).await;
    assert_eq!(
        site.seen("/lazy.png").len(),
        1,
        "scrolling brings the lazy image in"
    );

    // load_media: false leaves images out.
    site.route(
        "/pic",
        vec![Reply::html(
            "<html><body><img src=\"/pic.png\"></body></html>",
        )],
    );
    site.route("/pic.png", vec![Reply::png(tiny_png)]);
    pdf_of(
        &stack,
        key,
        json!({"url": site.url("/pic"), "load_media": false}),
    )
    .await;
    assert_eq!(
        site.seen("/pic.png").len(),
        0,
        "load_media false: the image is not fetched"
    );
    pdf_of(&stack, key, json!({"url": site.url("/pic")})).await;
    assert_eq!(site.seen("/pic.png").len(), 1);

    // cookies and headers reach the target server.
    site.route("/who", vec![Reply::html(&page("WHO"))]);
    pdf_of(
        &stack,
        key,
        json!({"url": site.url("/who"), "headers": {"X-Tenant": "blue-42"},
               "cookies": [{"name": "session", "value": "s3cr3t", "url": site.url("/")}]}),
    )
    .await;
    let seen = site.seen("/who");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].headers.get("x-tenant").map(String::as_str),
        Some("blue-42")
    );
    assert!(
        seen[0]
            .headers
            .get("cookie")
            .is_some_and(|c| c.contains("session=s3cr3t")),
        "{:?}",
        seen[0].headers
    );

    // basic auth opens a protected page; without it the page answers 401.
    site.route(
        "/private",
        vec![Reply::html(&page("PRIVATE-7")).with_basic_auth("ann", "pw-1")],
    );
    let text = pdf_text(
        &pdf_of(
            &stack,
            key,
            json!({"url": site.url("/private"), "auth": {"username": "ann", "password": "pw-1"}}),
        )
        .await,
    );
    assert!(text.contains("Invoice PRIVATE-7"), "{text}");
    let status = stack
        .submit_and_wait(
            key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/private"), "async_mode": true}),
        )
        .await;
    assert_eq!(status["status"], "failed");
    assert_eq!(
        status["items"][0]["error"],
        "The page requires authentication; credentials were missing or refused (net::ERR_INVALID_AUTH_CREDENTIALS)"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn target_errors_fail_the_job_clearly() {
    // Short enough for a quick test, long enough for a loaded machine.
    let stack = Stack::start(StackOptions {
        render_timeout: Duration::from_secs(15),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route(
        "/slow",
        vec![Reply::html(&page("SLOW")).with_delay(Duration::from_secs(30))],
    );
    site.route("/teapot", vec![Reply::status(503)]);
    let project = stack.project("starter", "owner@example.com").await;
    let key = &project.private_key;
    // A port nobody listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let status = stack.submit_and_wait(key, "/v1/convert/url-to-pdf", &json!({"url": [format!("http://{closed}/refused"), site.url("/slow"), site.url("/teapot")]}))
    .await;
    assert_eq!(status["status"], "failed", "{status}");
    let errors: Vec<&str> = status["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["error"].as_str().unwrap())
        .collect();
    assert!(
        errors[0].starts_with("The connection was refused"),
        "{errors:?}"
    );
    assert_eq!(errors[1], "Page load timeout");
    assert_eq!(errors[2], "The page answered HTTP 503");

    // fail_on_http_error: false renders the error page anyway.
    let text = pdf_text(
        &pdf_of(
            &stack,
            key,
            json!({"url": site.url("/teapot"), "fail_on_http_error": false}),
        )
        .await,
    );
    assert!(text.contains("status 503"), "{text}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_by_plan_with_headers() {
    let stack = Stack::start(StackOptions::default()).await;
    let project = stack.project("free", "owner@example.com").await;
    let url = "/v1/convert/url-to-pdf";
    // free: 10 requests per minute for a private key. Invalid bodies count too. A minute
    // boundary can reset the count once, so up to 21 requests may be needed to see a 429.
    let mut limited = None;
    let mut previous: Option<u32> = None;
    for _ in 0..21 {
        let resp = stack
            .post(&project.private_key, url, &json!({"url": "ftp://nope"}))
            .await;
        if resp.status() == 429 {
            limited = Some(resp);
            break;
        }
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["ratelimit-limit"], "10");
        let remaining: u32 = resp.headers()["ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        if let Some(prev) = previous {
            assert!(
                remaining + 1 == prev || remaining == 9,
                "{prev} -> {remaining}"
            );
        }
        previous = Some(remaining);
    }
    let resp = limited.expect("a 429 after 10 requests in a minute");
    assert_eq!(
        previous,
        Some(0),
        "the 429 comes right after the last allowed request"
    );
    let retry: u32 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(resp.headers()["ratelimit-remaining"], "0");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Polling is exempt.
    let resp = stack
        .get(&project.private_key, "/v1/convert/status/nothing")
        .await;
    assert_eq!(resp.status(), 404);
    // The public key has its own budget (5 per minute on free).
    let resp = stack
        .post(&project.public_key, url, &json!({"url": "ftp://nope"}))
        .await;
    assert_eq!(resp.headers()["ratelimit-limit"], "5");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_past_retention_are_deleted() {
    let stack = Stack::start(StackOptions {
        retention_sweep: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("KEEP"))]);
    let project = stack.project("starter", "owner@example.com").await;
    let status = stack
        .submit_and_wait(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/p"), "async_mode": true}),
        )
        .await;
    let link = status["items"][0]["download_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(fetch(&link).await.0, 200);
    // Starter keeps files 24 h: make this one 25 h old.
    {
        use diesel_async::RunQueryDsl;
        let mut conn = stack.db.conn().await.unwrap();
        diesel::sql_query("UPDATE jobs SET finished_at = now() - interval '25 hours'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while fetch(&link).await.0 != 404 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the file was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let batch_id = status["batch_id"].as_str().unwrap();
    let again: Value = stack
        .get(
            &project.private_key,
            &format!("/v1/convert/batch/{batch_id}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        again["items"][0]["download_url"].is_null(),
        "no link to a deleted file"
    );
    assert_eq!(again["items"][0]["status"], "Success");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_sync_job_answers_504_and_goes_on() {
    let stack = Stack::start(StackOptions {
        sync_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route(
        "/slow",
        vec![Reply::html(&page("LATE-SYNC")).with_delay(Duration::from_secs(3))],
    );
    let project = stack.project("starter", "owner@example.com").await;
    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/slow"), "job_id": "slow-1"}),
        )
        .await;
    assert_eq!(resp.status(), 504);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "conversion_timeout");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("/v1/convert/status/slow-1"),
        "{body}"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let job: Value = stack
            .get(&project.private_key, "/v1/convert/status/slow-1")
            .await
            .json()
            .await
            .unwrap();
        if job["status"] == "success" {
            let (_, pdf) = fetch(job["presigned_url"].as_str().unwrap()).await;
            assert!(pdf_text(&pdf).contains("LATE-SYNC"));
            break;
        }
        assert_eq!(job["status"], "processing");
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_document_and_page_describe_the_contract() {
    let stack = Stack::start(StackOptions::default()).await;
    let doc: Value = stack
        .http
        .get(format!("{}/openapi.json", stack.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/convert/url-to-pdf",
        "/v1/convert/url-to-screenshot",
        "/v1/convert/batch/{batch_id}",
        "/v1/convert/status/{job_id}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    let fields = doc["components"]["schemas"]["RawConvertRequest"]["properties"]
        .as_object()
        .unwrap();
    for f in [
        "url",
        "async_mode",
        "output_format",
        "direct_download",
        "output_filename",
        "job_id",
        "notification_email",
        "callback_url",
        "viewport_width",
        "viewport_height",
        "wait_for_selector",
        "wait_for_selector_timeout",
        "load_media",
        "enable_scroll",
        "block_ads",
        "block_media",
        "auth",
        "cookies",
        "headers",
        "single_page",
        "pdf_options",
    ] {
        assert!(fields.contains_key(f), "{f} documented");
    }
    let page = stack
        .http
        .get(format!("{}/docs", stack.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("POST /v1/convert/url-to-pdf") && page.contains("viewport_width"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_can_live_in_an_s3_bucket_with_presigned_links() {
    let s3 = enconvert_e2e::peers::S3Peer::start("enconvert-files").await;
    let storage_options = [
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_region", "us-east-1"),
        ("aws_endpoint", s3.endpoint.as_str()),
        ("aws_allow_http", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let stack = Stack::start(StackOptions {
        storage_url: Some("s3://enconvert-files".into()),
        storage_options,
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("BUCKET-3"))]);
    let project = stack.project("starter", "owner@example.com").await;
    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/p")}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let done: Value = resp.json().await.unwrap();
    let link = done["presigned_url"].as_str().unwrap();
    assert!(
        link.starts_with(&s3.endpoint),
        "a presigned bucket URL: {link}"
    );
    assert!(link.contains("X-Amz-Signature="), "{link}");
    let (code, pdf) = fetch(link).await;
    assert_eq!(code, 200);
    assert!(pdf_text(&pdf).contains("Invoice BUCKET-3"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn screenshot_and_blocking_options_change_the_output() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    let tall: String = (0..80).map(|i| format!("<p>row {i}</p>")).collect();
    site.route(
        "/tall",
        vec![Reply::html(&format!("<html><body>{tall}</body></html>"))],
    );
    site.route("/video", vec![Reply::html("<html><body><video src=\"/clip.mp4\" autoplay muted preload=\"auto\"></video><p>clip</p></body></html>")]);
    site.route("/clip.mp4", vec![Reply::status(200)]);
    let project = stack.project("starter", "owner@example.com").await;
    let key = &project.private_key;
    let shot = |body: Value| {
        let stack = &stack;
        async move {
            let mut body = body;
            body["async_mode"] = json!(true);
            let status = stack
                .submit_and_wait(key, "/v1/convert/url-to-screenshot", &body)
                .await;
            assert_eq!(status["status"], "completed", "{status}");
            fetch(status["items"][0]["download_url"].as_str().unwrap())
                .await
                .1
        }
    };
    let png_size = |data: &[u8]| {
        let r = png::Decoder::new(std::io::Cursor::new(data.to_vec()))
            .read_info()
            .unwrap();
        (r.info().width, r.info().height)
    };
    // Full page (default) vs viewport only.
    let full =
        shot(json!({"url": site.url("/tall"), "viewport_width": 640, "viewport_height": 480}))
            .await;
    let (w, h) = png_size(&full);
    assert_eq!(w, 640);
    assert!(h > 480, "full page is taller than the viewport: {h}");
    let clipped = shot(json!({"url": site.url("/tall"), "viewport_width": 640, "viewport_height": 480, "full_page": false})).await;
    assert_eq!(png_size(&clipped), (640, 480));
    // device_scale_factor doubles the pixels.
    let hi = shot(json!({"url": site.url("/tall"), "viewport_width": 640, "viewport_height": 480, "full_page": false, "device_scale_factor": 2})).await;
    assert_eq!(png_size(&hi), (1280, 960));
    // jpeg and webp.
    let jpeg = shot(json!({"url": site.url("/tall"), "format": "jpeg", "quality": 40})).await;
    assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG");
    let webp = shot(json!({"url": site.url("/tall"), "format": "webp"})).await;
    assert!(
        webp.starts_with(b"RIFF") && &webp[8..12] == b"WEBP",
        "a WebP"
    );
    // block_media: the video is never requested.
    shot(json!({"url": site.url("/video"), "block_media": true})).await;
    assert_eq!(
        site.seen("/clip.mp4").len(),
        0,
        "block_media: no request for the video"
    );
    shot(json!({"url": site.url("/video")})).await;
    assert!(
        !site.seen("/clip.mp4").is_empty(),
        "control: the video is requested"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_kinds_and_revocation() {
    let stack = Stack::start(StackOptions::default()).await;
    let project = stack.project("enterprise", "owner@example.com").await;
    let url = "/v1/convert/url-to-pdf";
    let target = "http://127.0.0.1:9/p";
    let resp = stack
        .post(&project.public_key, url, &json!({"url": [target, target]}))
        .await;
    assert_eq!(resp.status(), 403);
    assert!(
        resp.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .contains("several URLs")
    );
    let accepted: Value = stack
        .post(
            &project.private_key,
            url,
            &json!({"url": target, "async_mode": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    let batch = accepted["batch_id"].as_str().unwrap();
    let resp = stack
        .get(&project.public_key, &format!("/v1/convert/batch/{batch}"))
        .await;
    assert_eq!(resp.status(), 403, "public keys cannot poll batches");
    // A revoked key gets the same 401 as an unknown one.
    let mut conn = stack.db.conn().await.unwrap();
    let keys = enconvert_db::projects::keys_by_prefix(
        &mut conn,
        &enconvert_db::keys::display_prefix(&project.private_key),
    )
    .await
    .unwrap();
    assert_eq!(keys.len(), 1);
    assert!(
        enconvert_db::projects::revoke_key(&mut conn, keys[0].id)
            .await
            .unwrap()
    );
    // The api keeps callers in memory; the revocation (made here, as by another process)
    // reaches it by PostgreSQL's notification within milliseconds, long before the 30 s a
    // caller is kept at most.
    let since = std::time::Instant::now();
    let revoked = loop {
        let resp = stack
            .post(
                &project.private_key,
                url,
                &json!({"url": target, "async_mode": true}),
            )
            .await;
        if resp.status() != 202 || since.elapsed() > Duration::from_secs(2) {
            break resp;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        revoked.status(),
        401,
        "refused {:?} after the revocation",
        since.elapsed()
    );
    let revoked: Value = revoked.json().await.unwrap();
    // A wrong key that shares the real key's prefix.
    let mut forged = project.public_key.clone();
    forged.pop();
    forged.push(if project.public_key.ends_with('A') {
        'B'
    } else {
        'A'
    });
    let wrong: Value = stack
        .post(&forged, url, &json!({"url": target}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(revoked, wrong);
    stack.stop().await;
}

// ---------------------------------------------------------------------------------------
// Reliability: nothing is stranded, connections come back.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_stranded_by_a_dead_worker_is_requeued_and_finishes_once() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("STRANDED"))]);
    let project = stack.project("starter", "owner@example.com").await;
    // What a worker killed mid-render leaves: the job claimed (`rendering`, attempt 1) with a
    // lease that has run out, and no message left in any queue.
    let batch_id = uuid::Uuid::now_v7();
    {
        let mut conn = stack.db.conn().await.unwrap();
        let batch = enconvert_db::models::Batch {
            id: batch_id,
            project_id: project.id,
            endpoint: "url-to-pdf".into(),
            output_mode: "individual".into(),
            is_async: true,
            total: 1,
            succeeded: 0,
            failed: 0,
            options: serde_json::to_value(
                enconvert_domain::request::parse_body(
                    &serde_json::to_vec(&json!({"url": site.url("/p")})).unwrap(),
                )
                .unwrap()
                .validate(
                    enconvert_domain::request::Endpoint::UrlToPdf,
                    &enconvert_domain::AllowList::parse("127.0.0.1").unwrap(),
                )
                .unwrap()
                .options,
            )
            .unwrap(),
            output_filename: None,
            notification_email: None,
            callback_url: None,
            archive_status: None,
            archive_key: None,
            archive_filename: None,
            archive_size: None,
            created_at: chrono::Utc::now(),
            completed_at: None,
            archive_expired_at: None,
            discovery_status: None,
            discovery_method: None,
            total_discovered: None,
            discovery_request: None,
            discovery_error: None,
            archive_error: None,
        };
        let mut job =
            enconvert_db::models::Job::new_queued(batch_id, project.id, None, 0, site.url("/p"));
        job.status = "rendering".into();
        job.attempts = 1;
        job.lease_until = Some(chrono::Utc::now() - chrono::Duration::seconds(1));
        enconvert_db::batches::create(&mut conn, &batch, &[job], &[])
            .await
            .unwrap();
    }
    let status = stack
        .wait_batch(&project.private_key, &batch_id.to_string(), WAIT)
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    let mut conn = stack.db.conn().await.unwrap();
    let job = enconvert_db::batches::jobs_of(&mut conn, batch_id)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        job.attempts, 2,
        "rendered once more, by the reconciler's message"
    );
    assert_eq!(site.seen("/p").len(), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_reconnect_after_rabbitmq_closes_their_connections() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("RECONNECT"))]);
    let hooks = HttpPeer::start().await;
    hooks.route("/hook", vec![Reply::status(200)]);
    let project = stack.project("pro", "owner@example.com").await;
    // Close every connection of this test's vhost, as `rabbitmqctl close_all_connections`
    // would (limited to the vhost so parallel tests are not disturbed).
    // The management API lists connections with a delay: wait until all three show.
    let deadline = tokio::time::Instant::now() + WAIT;
    while stack.amqp_connections().await.len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "connections never listed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let closed = stack.close_amqp_connections().await;
    assert!(
        closed >= 3,
        "api relay, worker and notifier were connected: {closed}"
    );
    let status = stack
        .submit_and_wait(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/p"), "async_mode": true, "callback_url": hooks.url("/hook")}),
        )
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        hooks.wait_for("/hook", 1, WAIT).await.len(),
        1,
        "the notifier reconnected too"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sync_call_is_served_before_a_large_batch() {
    // Two render slots, both taken by a batch of slow pages; a sync call made then must not
    // wait for them (it has a slot of its own and goes first), and finishes long before the
    // batch does.
    let stack = Stack::start(StackOptions {
        concurrency: 2,
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route(
        "/slow",
        vec![Reply::html(&page("SLOW-BATCH")).with_delay(Duration::from_secs(8))],
    );
    site.route("/quick", vec![Reply::html(&page("QUICK-SYNC"))]);
    let project = stack.project("pro", "owner@example.com").await;
    let urls: Vec<String> = (0..6).map(|i| site.url(&format!("/slow?i={i}"))).collect();
    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": urls, "async_mode": true}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let batch_id = resp.json::<Value>().await.unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Every regular slot is busy with the batch.
    assert_eq!(site.wait_for("/slow", 2, WAIT).await.len(), 2);

    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/quick"), "job_id": "sync-first", "direct_download": true}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let pdf = resp.bytes().await.unwrap();
    assert!(pdf_text(&pdf).contains("QUICK-SYNC"));
    let batch_now: Value = stack
        .get(
            &project.private_key,
            &format!("/v1/convert/batch/{batch_id}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(batch_now["status"], "processing", "{batch_now}");

    let done = stack
        .wait_batch(&project.private_key, &batch_id, Duration::from_secs(240))
        .await;
    assert_eq!(done["status"], "completed", "{done}");

    let mut conn = stack.db.conn().await.unwrap();
    let sync = enconvert_db::batches::find_job(&mut conn, project.id, "sync-first")
        .await
        .unwrap()
        .unwrap();
    let batch_jobs = enconvert_db::batches::jobs_of(&mut conn, batch_id.parse().unwrap())
        .await
        .unwrap();
    let batch = enconvert_db::batches::get(&mut conn, batch_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let sync_started = sync.started_at.unwrap();
    let sync_finished = sync.finished_at.unwrap();
    let first_batch_finish = batch_jobs
        .iter()
        .map(|j| j.finished_at.unwrap())
        .min()
        .unwrap();
    // The sync job did not wait for a batch job to free a slot...
    assert!(
        sync_started < first_batch_finish,
        "sync started {sync_started}, first batch job finished {first_batch_finish}"
    );
    // ...and was done before the batch.
    assert!(sync_finished < batch.completed_at.unwrap());
    let started_after_sync = batch_jobs
        .iter()
        .filter(|j| j.started_at.unwrap() > sync_started)
        .count();
    assert_eq!(
        started_after_sync, 4,
        "only the two batch jobs in flight started before the sync job"
    );
    stack.stop().await;
}

// ---------------------------------------------------------------------------------------
// Egress from inside the page (fault case 12): the stack allows 127.0.0.1 only; a canary on
// 127.0.0.2 (loopback, so no packet leaves the machine) stands for a private network.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_made_by_the_page_cannot_reach_a_refused_address() {
    let stack = Stack::start(StackOptions::default()).await;
    let canary = HttpPeer::start_on("127.0.0.2").await;
    let token = "CANARY-7f3e";
    for path in [
        "/img",
        "/frame",
        "/fetch",
        "/worker",
        "/refresh",
        "/redirected",
        "/ws",
    ] {
        canary.route(path, vec![Reply::html(&format!("<h1>{token}</h1>"))]);
    }
    let c = |p: &str| canary.url(p);
    let ws = format!("{}/ws", canary.addr);
    let site = HttpPeer::start().await;
    site.route(
        "/page",
        vec![Reply::html(&format!(
            r#"<!doctype html><html><body><h1>SAFE-PAGE</h1>
<img src="{img}" alt="">
<iframe src="{frame}"></iframe>
<div id="out"></div>
<script>
  fetch("{fetch}").then(r => r.text()).then(t => document.getElementById("out").textContent = t).catch(() => {{}});
  new Worker("/worker.js");
  try {{ new WebSocket("ws://{ws}"); }} catch (e) {{}}
</script>
</body></html>"#,
            img = c("/img"),
            frame = c("/frame"),
            fetch = c("/fetch"),
            ws = ws,
        ))],
    );
    site.route(
        "/worker.js",
        vec![
            Reply::html(&format!(
                "fetch({:?}).then(r => r.text()).then(t => postMessage(t));",
                c("/worker")
            ))
            .with_header("Content-Type", "text/javascript"),
        ],
    );
    site.route(
        "/refresh",
        vec![Reply::html(&format!(
            r#"<!doctype html><html><head><meta http-equiv="refresh" content="0;url={}"></head><body><h1>BEFORE-REFRESH</h1></body></html>"#,
            c("/refresh")
        ))],
    );
    site.route(
        "/redirect",
        vec![Reply::status(302).with_header("Location", &c("/redirected"))],
    );
    let project = stack.project("pro", "owner@example.com").await;
    let key = &project.private_key;

    // The page renders (its own text is there) without anything from the canary.
    let status = stack
        .submit_and_wait(
            key,
            "/v1/convert/url-to-pdf",
            &json!({"url": [site.url("/page"), site.url("/refresh")], "async_mode": true}),
        )
        .await;
    let items = status["items"].as_array().unwrap();
    assert_eq!(items[0]["status"], "Success", "{status}");
    let (_, pdf) = fetch(items[0]["download_url"].as_str().unwrap()).await;
    let text = pdf_text(&pdf);
    assert!(text.contains("SAFE-PAGE"), "{text}");
    assert!(!text.contains(token), "{text}");
    if items[1]["status"] == "Success" {
        let (_, pdf) = fetch(items[1]["download_url"].as_str().unwrap()).await;
        assert!(!pdf_text(&pdf).contains(token));
    }

    // A redirect to the canary fails the job.
    let status = stack
        .submit_and_wait(
            key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/redirect"), "async_mode": true}),
        )
        .await;
    assert_eq!(status["items"][0]["status"], "Failed", "{status}");
    assert!(
        status["items"][0]["error"]
            .as_str()
            .unwrap()
            .contains("egress policy"),
        "{status}"
    );

    assert!(
        site.seen("/worker.js").len() == 1,
        "the page ran its script"
    );
    let seen: Vec<String> = canary.seen_all().iter().map(|s| s.path.clone()).collect();
    assert!(seen.is_empty(), "the canary was reached: {seen:?}");
    stack.stop().await;
}

/// Each api process counts requests in memory and adds them to the shared window in
/// PostgreSQL in the background: two processes (two counters) see each other's requests
/// after a flush, and a window's total is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_windows_are_shared_between_api_processes() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use enconvert_api::rate::RateCounter;
    let stack = Stack::start(StackOptions::default()).await;
    let project = stack.project("free", "owner@example.com").await;
    let mut conn = stack.db.conn().await.unwrap();
    let key = enconvert_db::projects::keys_by_prefix(
        &mut conn,
        &enconvert_db::keys::display_prefix(&project.private_key),
    )
    .await
    .unwrap()
    .remove(0);
    drop(conn);
    // Not across a minute boundary (the window would reset between the counts).
    let second = chrono::Utc::now().timestamp().rem_euclid(60);
    if second > 50 {
        tokio::time::sleep(Duration::from_secs(u64::try_from(61 - second).unwrap())).await;
    }
    let (a, b) = (RateCounter::default(), RateCounter::default());
    for n in 1..=6 {
        assert_eq!(a.hit(key.id).count, n);
    }
    assert_eq!(
        b.hit(key.id).count,
        1,
        "b has not heard of a's requests yet"
    );
    a.flush(&stack.db).await.unwrap();
    b.flush(&stack.db).await.unwrap();
    assert_eq!(
        b.hit(key.id).count,
        8,
        "b now counts a's six and its own one"
    );
    assert_eq!(a.hit(key.id).count, 7, "a has not heard of b's yet");
    a.flush(&stack.db).await.unwrap();
    assert_eq!(a.hit(key.id).count, 9);
    b.flush(&stack.db).await.unwrap();
    a.flush(&stack.db).await.unwrap();
    let mut conn = stack.db.conn().await.unwrap();
    let total: i32 = enconvert_db::schema::rate_windows::table
        .filter(enconvert_db::schema::rate_windows::key_id.eq(key.id))
        .select(diesel::dsl::max(enconvert_db::schema::rate_windows::count))
        .first::<Option<i32>>(&mut conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        total, 10,
        "every request counted once in the shared window (a 8, b 2)"
    );
    // A plan's limits are what the api reads: changed by SQL (as an operator would), the
    // api sees the change through the triggers' notification.
    let url = "/v1/convert/url-to-pdf";
    let resp = stack
        .post(&project.public_key, url, &json!({"url": "ftp://nope"}))
        .await;
    assert_eq!(resp.headers()["ratelimit-limit"], "5");
    diesel::sql_query("UPDATE plans SET rpm_public = 7 WHERE name = 'free'")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let since = std::time::Instant::now();
    loop {
        let resp = stack
            .post(&project.public_key, url, &json!({"url": "ftp://nope"}))
            .await;
        if resp.headers()["ratelimit-limit"] == "7" {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "the plan change was not seen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack.stop().await;
}
