//! Job notifications end to end, field by field, against a real SMTP server and a real HTTP
//! receiver: the seed document's emails and webhooks, and ours on top (signatures, retries,
//! the delivery log, the owner-email switch).

#![expect(clippy::unwrap_used, reason = "tests")]

use std::collections::HashMap;
use std::time::Duration;

use enconvert_domain::notify::truncate_url;
use enconvert_e2e::peers::{HttpPeer, Mail, Reply, Seen, SmtpPeer};
use enconvert_e2e::{Stack, StackOptions, TestProject, WAIT, page, verify_standard_webhook};
use serde_json::{Value, json};
use uuid::Uuid;

const GREEN: &str = "#1e8e3e";
const RED: &str = "#d93025";

fn secs(list: &[u64]) -> Option<Vec<Duration>> {
    Some(list.iter().map(|s| Duration::from_secs(*s)).collect())
}

fn json_of(seen: &Seen) -> Value {
    serde_json::from_slice(&seen.body).unwrap()
}

/// The cells of the tasks table's body rows.
fn table_rows(html: &str) -> Vec<Vec<String>> {
    let Some(start) = html.find("<tbody>") else {
        return Vec::new();
    };
    let end = html[start..].find("</tbody>").unwrap() + start;
    html[start..end]
        .split("<tr")
        .skip(1)
        .map(|row| {
            row.split("<td>")
                .skip(1)
                .map(|cell| cell.split("</td>").next().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// The banner's colour in an email's HTML.
fn banner_colour(html: &str) -> String {
    let prefix = "class=\"banner\" style=\"background:";
    let at = html.find(prefix).unwrap() + prefix.len();
    html[at..at + 7].to_string()
}

async fn signing_secret(stack: &Stack, project: &TestProject) -> String {
    let mut conn = stack.db.conn().await.unwrap();
    enconvert_db::webhook_secrets::current(&mut conn, project.id)
        .await
        .unwrap()
}

/// A project whose owner gets no emails, so its delivery log holds only webhooks.
async fn webhook_only_project(stack: &Stack) -> TestProject {
    let project = stack.project("pro", "owner@example.com").await;
    let mut conn = stack.db.conn().await.unwrap();
    enconvert_db::projects::set_default_email(&mut conn, project.id, false)
        .await
        .unwrap();
    project
}

fn mail_for<'a>(mails: &'a [Mail], needle: &str) -> &'a Mail {
    mails
        .iter()
        .find(|m| m.subject().contains(needle))
        .unwrap_or_else(|| panic!("no email whose subject contains {needle}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn individual_mode_sends_one_email_and_one_webhook_per_url() {
    let smtp = SmtpPeer::start();
    let stack = Stack::start(StackOptions {
        smtp: Some(smtp.addr),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/ok", vec![Reply::html(&page("OK"))]);
    site.route("/missing", vec![Reply::status(404)]);
    let hooks = HttpPeer::start().await;
    hooks.route("/hook", vec![Reply::status(200)]);
    let project = stack.project("pro", "owner@example.com").await;
    let batch_id = stack
        .submit(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({
                "url": [site.url("/ok"), site.url("/missing")],
                "notification_email": "team@example.com",
                "callback_url": hooks.url("/hook"),
            }),
        )
        .await;
    let status = stack
        .wait_batch(&project.private_key, &batch_id, WAIT)
        .await;
    assert_eq!(status["status"], "partial", "{status}");
    let ok_job = status["items"][0]["job_id"].as_str().unwrap().to_string();
    let failed_job = status["items"][1]["job_id"].as_str().unwrap().to_string();

    // Webhooks: one POST per URL, the seed's two shapes (plus our `error`).
    let seen = hooks.wait_for("/hook", 2, WAIT).await;
    assert_eq!(seen.len(), 2, "one webhook per URL");
    let by_job: HashMap<String, Value> = seen
        .iter()
        .map(|s| {
            let v = json_of(s);
            (v["job_id"].as_str().unwrap().to_string(), v)
        })
        .collect();
    let ok = &by_job[&ok_job];
    let keys: Vec<&str> = ok.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys.len(),
        6,
        "job_id, status, batch_id, gcs_uri, filename, file_size: {ok}"
    );
    assert_eq!(ok["status"], "success");
    assert_eq!(ok["batch_id"], batch_id.as_str());
    assert_eq!(
        ok["file_size"].as_u64(),
        status["items"][0]["output_file_size"].as_u64()
    );
    let gcs_uri = ok["gcs_uri"].as_str().unwrap();
    assert!(gcs_uri.starts_with(&format!("dev/files/{}/url-to-pdf/", project.id)));
    assert!(gcs_uri.ends_with(&format!("/{}", ok["filename"].as_str().unwrap())));
    let failed = &by_job[&failed_job];
    assert_eq!(
        failed,
        &json!({"job_id": failed_job, "status": "failed", "batch_id": batch_id, "error": "The page answered HTTP 404"}),
        "the seed's failed shape, plus our error"
    );
    for s in &seen {
        assert_eq!(s.method, "POST");
        assert_eq!(s.header("content-type"), "application/json");
        assert!(!s.header("webhook-id").is_empty());
        assert!(s.header("webhook-signature").starts_with("v1,"));
    }

    // Emails: one per URL, to notification_email, job ID and status, no table.
    let mails = smtp.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.mails().len(), 2, "one email per URL");
    let dashboard = format!(
        "{}/batches/{batch_id}",
        stack.settings.notifier.dashboard_url
    );
    for (job, word, colour, status_text) in [
        (&ok_job, "succeeded", GREEN, "success"),
        (&failed_job, "failed", RED, "failed"),
    ] {
        let mail = mail_for(&mails, job);
        assert_eq!(mail.rcpt, vec!["team@example.com".to_string()]);
        assert_eq!(
            mail.subject(),
            format!("Your conversion job {job} {word}"),
            "the subject states the outcome"
        );
        let html = mail.html();
        assert_eq!(banner_colour(&html), colour, "{html}");
        assert!(html.contains(&format!("<code class=\"job-id\">{job}</code>")));
        assert!(html.contains(&format!("<code class=\"batch-id\">{batch_id}</code>")));
        assert!(html.contains(&format!(">{status_text}</strong>")));
        assert!(html.contains(&format!("href=\"{dashboard}\"")), "{html}");
        assert!(html.contains("dashboard"));
        assert!(!html.contains("<table class=\"tasks\""), "no table: {html}");
        let text = mail.text().replace("\r\n", "\n");
        assert!(text.contains(&format!("Job ID: {job}\n")), "{text}");
        assert!(text.contains(&format!("Batch ID: {batch_id}\n")), "{text}");
        assert!(text.contains(&format!("Status: {status_text}\n")), "{text}");
        assert!(text.contains(&dashboard), "{text}");
        assert!(!text.contains("URL"), "no table in the text either: {text}");
    }

    // The delivery log: four deliveries, one attempt each.
    let log = stack
        .wait_deliveries(&project.private_key, &batch_id, 4, WAIT)
        .await;
    assert_eq!(log.len(), 4, "{log:?}");
    for d in &log {
        assert_eq!(d["status"], "sent", "{d}");
        let attempts = d["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{d}");
        assert_eq!(attempts[0]["attempt"], 1);
        assert!(attempts[0]["latency_ms"].as_i64().unwrap() >= 0);
        assert!(attempts[0]["error"].is_null());
        assert!(attempts[0]["started_at"].is_string());
        if d["channel"] == "webhook" {
            assert_eq!(d["url"], hooks.url("/hook"));
            assert_eq!(attempts[0]["status_code"], 200);
            assert_eq!(attempts[0]["response_body"], "status 200");
            let hook = seen
                .iter()
                .find(|s| s.header("webhook-id") == d["id"].as_str().unwrap())
                .expect("webhook-id is the delivery's id");
            assert_eq!(json_of(hook)["job_id"], d["job_id"]);
        } else {
            assert_eq!(d["channel"], "email");
            assert!(d.get("url").is_none(), "recipients are not repeated");
            assert!(attempts[0]["status_code"].is_null());
        }
    }
    // Another project cannot read it.
    let other = stack.project("pro", "other@example.com").await;
    let resp = stack
        .get(
            &other.private_key,
            &format!("/v1/convert/batch/{batch_id}/deliveries"),
        )
        .await;
    assert_eq!(resp.status(), 404);
    let resp = stack
        .get(
            &project.public_key,
            &format!("/v1/convert/batch/{batch_id}/deliveries"),
        )
        .await;
    assert_eq!(resp.status(), 403);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zip_mode_sends_one_email_with_the_tasks_table_and_one_webhook() {
    let smtp = SmtpPeer::start();
    let stack = Stack::start(StackOptions {
        smtp: Some(smtp.addr),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    let long_path = format!("/reports/{}/summary.html", "quarterly-revenue".repeat(4));
    site.route("/a", vec![Reply::html(&page("A"))]);
    site.route(&long_path, vec![Reply::html(&page("LONG"))]);
    site.route("/gone", vec![Reply::status(410)]);
    let hooks = HttpPeer::start().await;
    hooks.route("/zip", vec![Reply::status(202)]);
    let project = stack.project("pro", "owner@example.com").await;
    let urls = [site.url("/a"), site.url(&long_path), site.url("/gone")];
    assert!(urls[1].chars().count() > 50);
    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": urls, "output_format": "zip", "callback_url": hooks.url("/zip")}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let accepted: Value = resp.json().await.unwrap();
    assert_eq!(accepted["output_format"], "zip");
    let batch_id = accepted["batch_id"].as_str().unwrap().to_string();
    // The worker builds and stores the archive; only then is the batch complete and notified.
    let done = stack
        .wait_batch(&project.private_key, &batch_id, WAIT)
        .await;
    assert_eq!(done["status"], "partial", "{done}");
    assert!(done["zip_download_url"].is_string());
    let batch = {
        let mut conn = stack.db.conn().await.unwrap();
        enconvert_db::batches::get(&mut conn, batch_id.parse().unwrap())
            .await
            .unwrap()
            .unwrap()
    };
    let archive_key = batch.archive_key.clone().unwrap();
    let archive_name = batch.archive_filename.clone().unwrap();
    let archive_size = batch.archive_size.unwrap();
    assert!(archive_name.starts_with("batch_") && archive_name.ends_with(".zip"));
    let items = stack
        .wait_batch(&project.private_key, &batch_id, WAIT)
        .await["items"]
        .clone();
    let mut names: Vec<Option<String>> = Vec::new();
    for item in items.as_array().unwrap() {
        let job = item["job_id"].as_str().unwrap();
        let status: Value = stack
            .get(&project.private_key, &format!("/v1/convert/status/{job}"))
            .await
            .json()
            .await
            .unwrap();
        names.push(status["filename"].as_str().map(str::to_string));
    }

    // The webhook: the seed's ZIP shape, one POST for the batch.
    let seen = hooks.wait_for("/zip", 1, WAIT).await;
    assert_eq!(seen.len(), 1);
    let hook = json_of(&seen[0]);
    assert_eq!(
        hook,
        json!({
            "job_id": batch_id,
            "status": "success",
            "batch_id": batch_id,
            "gcs_uri": archive_key,
            "filename": archive_name,
            "file_size": archive_size,
            "total_tasks": 3,
            "successful_tasks": 2,
            "failed_tasks": 1,
            "tasks": [
                {"url": urls[0], "status": "success", "filename": names[0].clone().unwrap()},
                {"url": urls[1], "status": "success", "filename": names[1].clone().unwrap()},
                {"url": urls[2], "status": "failed", "error": "The page answered HTTP 410"},
            ],
        })
    );

    // The email: one for the batch, to the owner, with the tasks table.
    let mails = smtp.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.mails().len(), 1, "one email per ZIP batch");
    let mail = &mails[0];
    assert_eq!(mail.rcpt, vec!["owner@example.com".to_string()]);
    assert_eq!(
        mail.subject(),
        format!("Your batch {batch_id} is complete: 2 of 3 succeeded")
    );
    let html = mail.html();
    assert_eq!(banner_colour(&html), GREEN);
    assert!(html.contains(&format!("<code class=\"job-id\">{batch_id}</code>")));
    assert!(html.contains(&format!("<code class=\"batch-id\">{batch_id}</code>")));
    assert!(html.contains(">success</strong>"));
    assert!(html.contains("<th>#</th><th>URL</th><th>Status</th><th>Output file</th>"));
    let rows = table_rows(&html);
    let cut = truncate_url(&urls[1]);
    assert_eq!(cut.chars().count(), 50);
    assert_eq!(
        rows,
        vec![
            vec![
                "1".to_string(),
                urls[0].clone(),
                "success".to_string(),
                names[0].clone().unwrap()
            ],
            vec![
                "2".to_string(),
                cut.clone(),
                "success".to_string(),
                names[1].clone().unwrap()
            ],
            vec![
                "3".to_string(),
                urls[2].clone(),
                "failed".to_string(),
                "-".to_string()
            ],
        ],
        "{html}"
    );
    assert!(!html.contains(&urls[1]), "the long URL only appears cut");
    assert!(html.contains(&format!(
        "href=\"{}/batches/{batch_id}\"",
        stack.settings.notifier.dashboard_url
    )));
    let text = mail.text();
    assert!(text.contains(&format!("2  {cut}  success  ")), "{text}");

    // The same event again sends nothing.
    stack
        .publish(&[enconvert_queue::messages::batch_completed(
            &enconvert_domain::events::BatchCompleted {
                batch_id: batch.id,
                project_id: batch.project_id,
                status: batch.status(),
                output_mode: batch.output_mode(),
            },
        )])
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hooks.seen("/zip").len(), 1, "one webhook");
    assert_eq!(smtp.mails().len(), 1, "one email");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_zip_archive_is_a_red_email_and_a_failed_webhook() {
    let smtp = SmtpPeer::start();
    let stack = Stack::start(StackOptions {
        smtp: Some(smtp.addr),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/x", vec![Reply::status(500)]);
    site.route("/y", vec![Reply::status(500)]);
    let hooks = HttpPeer::start().await;
    hooks.route("/zip", vec![Reply::status(204)]);
    let project = stack.project("enterprise", "owner@example.com").await;
    let batch_id = stack
        .submit(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": [site.url("/x"), site.url("/y")], "output_format": true,
               "callback_url": hooks.url("/zip"), "notification_email": "ops@example.com"}),
        )
        .await;
    stack
        .wait_items(&project.private_key, &batch_id, WAIT)
        .await;
    stack
        .complete_zip_batch(batch_id.parse().unwrap(), false)
        .await;
    let hook = json_of(&hooks.wait_for("/zip", 1, WAIT).await[0]);
    assert_eq!(hook["status"], "failed");
    assert_eq!(hook["job_id"], batch_id.as_str());
    assert!(hook.get("gcs_uri").is_none() && hook.get("filename").is_none());
    assert_eq!(
        (
            hook["total_tasks"].as_u64(),
            hook["successful_tasks"].as_u64(),
            hook["failed_tasks"].as_u64()
        ),
        (Some(2), Some(0), Some(2))
    );
    let mails = smtp.wait_for(1, WAIT).await;
    assert_eq!(mails[0].rcpt, vec!["ops@example.com".to_string()]);
    assert_eq!(mails[0].subject(), format!("Your batch {batch_id} failed"));
    let html = mails[0].html();
    assert_eq!(banner_colour(&html), RED);
    assert!(html.contains(">failed</strong>"));
    assert_eq!(table_rows(&html).len(), 2);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signatures_verify_with_an_independent_implementation_across_a_rotation() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("SIG"))]);
    let hooks = HttpPeer::start().await;
    hooks.route("/hook", vec![Reply::status(200)]);
    let project = webhook_only_project(&stack).await;
    let body =
        json!({"url": site.url("/p"), "async_mode": true, "callback_url": hooks.url("/hook")});

    let first_batch = stack
        .submit(&project.private_key, "/v1/convert/url-to-pdf", &body)
        .await;
    let seen = hooks.wait_for("/hook", 1, WAIT).await;
    let s = &seen[0];
    let secret = signing_secret(&stack, &project).await;
    assert!(secret.starts_with("whsec_"));
    let id = s.header("webhook-id");
    let ts = s.header("webhook-timestamp");
    let sig = s.header("webhook-signature");
    assert!(Uuid::parse_str(id).is_ok(), "{id}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ts_num: u64 = ts.parse().unwrap();
    assert!(ts_num.abs_diff(now) < 60, "unix seconds: {ts}");
    assert_eq!(sig.split(' ').count(), 1, "one secret, one signature");
    let which = verify_standard_webhook(&secret, id, ts, sig, &s.body).unwrap();
    eprintln!("signature verified by {which}");
    // A changed body does not verify.
    assert!(verify_standard_webhook(&secret, id, ts, sig, b"{}").is_err());
    let log = stack
        .wait_deliveries(&project.private_key, &first_batch, 1, WAIT)
        .await;
    assert_eq!(log[0]["id"], id, "webhook-id is the delivery's id");

    // Rotation: the old secret keeps signing next to the new one during the grace period.
    let new_secret = {
        let mut conn = stack.db.conn().await.unwrap();
        enconvert_db::webhook_secrets::rotate(&mut conn, project.id, Duration::from_secs(3600))
            .await
            .unwrap()
    };
    assert_ne!(new_secret, secret);
    stack
        .submit(&project.private_key, "/v1/convert/url-to-pdf", &body)
        .await;
    let seen = hooks.wait_for("/hook", 2, WAIT).await;
    let s = &seen[1];
    let sig = s.header("webhook-signature");
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    for key in [&secret, &new_secret] {
        verify_standard_webhook(
            key,
            s.header("webhook-id"),
            s.header("webhook-timestamp"),
            sig,
            &s.body,
        )
        .unwrap();
    }
    // Once the grace period is over, only the new secret signs.
    {
        use diesel::{ExpressionMethods, QueryDsl};
        use diesel_async::RunQueryDsl;
        use enconvert_db::schema::webhook_secrets;
        let mut conn = stack.db.conn().await.unwrap();
        diesel::update(webhook_secrets::table.filter(webhook_secrets::secret.eq(&secret)))
            .set(webhook_secrets::expires_at.eq(diesel::dsl::now))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    stack
        .submit(&project.private_key, "/v1/convert/url-to-pdf", &body)
        .await;
    let seen = hooks.wait_for("/hook", 3, WAIT).await;
    let s = &seen[2];
    let sig = s.header("webhook-signature");
    assert_eq!(sig.split(' ').count(), 1, "{sig}");
    let (id, ts) = (s.header("webhook-id"), s.header("webhook-timestamp"));
    verify_standard_webhook(&new_secret, id, ts, sig, &s.body).unwrap();
    assert!(verify_standard_webhook(&secret, id, ts, sig, &s.body).is_err());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_receiver_is_retried_with_backoff_until_it_recovers() {
    let stack = Stack::start(StackOptions {
        retry_schedule: secs(&[1, 1, 1]),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("RETRY"))]);
    let hooks = HttpPeer::start().await;
    hooks.route(
        "/flaky",
        vec![
            Reply::status(503),
            Reply::status(500),
            Reply::status(429).with_header("Retry-After", "3"),
            Reply::status(201),
        ],
    );
    let project = webhook_only_project(&stack).await;
    let batch_id = stack.submit(&project.private_key, "/v1/convert/url-to-pdf", &json!({"url": site.url("/p"), "async_mode": true, "callback_url": hooks.url("/flaky")}))
    .await;
    let seen = hooks.wait_for("/flaky", 4, WAIT).await;
    assert_eq!(seen.len(), 4, "three failures, then success");
    let id = seen[0].header("webhook-id");
    assert!(
        seen.iter().all(|s| s.header("webhook-id") == id),
        "the same webhook-id on every retry"
    );
    assert!(seen.iter().all(|s| s.body == seen[0].body), "the same body");
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_secs(1), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_secs(1), "{gaps:?}");
    assert!(
        gaps[2] >= Duration::from_secs(3),
        "Retry-After is honoured: {gaps:?}"
    );
    let secret = signing_secret(&stack, &project).await;
    for s in &seen {
        verify_standard_webhook(
            &secret,
            s.header("webhook-id"),
            s.header("webhook-timestamp"),
            s.header("webhook-signature"),
            &s.body,
        )
        .unwrap();
    }

    let log = stack
        .wait_deliveries(&project.private_key, &batch_id, 1, WAIT)
        .await;
    let d = &log[0];
    assert_eq!(d["status"], "sent");
    assert!(d["next_attempt_at"].is_null());
    let attempts = d["attempts"].as_array().unwrap();
    let codes: Vec<i64> = attempts
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![503, 500, 429, 201]);
    assert_eq!(attempts[0]["error"], "receiver answered HTTP 503");
    assert_eq!(attempts[0]["response_body"], "status 503");
    assert!(attempts[3]["error"].is_null());
    let numbers: Vec<i64> = attempts
        .iter()
        .map(|a| a["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![1, 2, 3, 4]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hooks.seen("/flaky").len(), 4, "nothing after success");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redirects_and_client_errors_fail_without_retries_and_can_be_redelivered() {
    let stack = Stack::start(StackOptions {
        retry_schedule: secs(&[1, 1, 1]),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("NO-RETRY"))]);
    let hooks = HttpPeer::start().await;
    hooks.route(
        "/moved",
        vec![Reply::status(302).with_header("Location", &hooks.url("/elsewhere"))],
    );
    hooks.route("/elsewhere", vec![Reply::status(200)]);
    hooks.route("/refuses", vec![Reply::status(404)]);
    hooks.route("/dead-then-ok", vec![Reply::status(503)]);
    let project = webhook_only_project(&stack).await;
    let moved = stack.submit(&project.private_key, "/v1/convert/url-to-pdf", &json!({"url": site.url("/p"), "async_mode": true, "callback_url": hooks.url("/moved")}))
    .await;
    let refused = stack.submit(&project.private_key, "/v1/convert/url-to-pdf", &json!({"url": site.url("/p"), "async_mode": true, "callback_url": hooks.url("/refuses")}))
    .await;
    let exhausted = stack.submit(&project.private_key, "/v1/convert/url-to-pdf", &json!({"url": site.url("/p"), "async_mode": true, "callback_url": hooks.url("/dead-then-ok")}))
    .await;

    let log = stack
        .wait_deliveries(&project.private_key, &moved, 1, WAIT)
        .await;
    assert_eq!(log[0]["status"], "failed", "a 3xx is a failure");
    let attempts = log[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "not retried");
    assert_eq!(attempts[0]["status_code"], 302);
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed")
    );
    let log = stack
        .wait_deliveries(&project.private_key, &refused, 1, WAIT)
        .await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(log[0]["attempts"][0]["status_code"], 404);
    assert_eq!(log[0]["last_error"], "receiver answered HTTP 404");
    // 5xx: the whole schedule, then failed.
    let log = stack
        .wait_deliveries(&project.private_key, &exhausted, 1, WAIT)
        .await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(
        log[0]["attempts"].as_array().unwrap().len(),
        4,
        "the first attempt and three retries"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hooks.seen("/moved").len(), 1);
    assert!(hooks.seen("/elsewhere").is_empty(), "redirect not followed");
    assert_eq!(hooks.seen("/refuses").len(), 1);
    assert_eq!(hooks.seen("/dead-then-ok").len(), 4);

    // Redelivery: one new attempt now, with the same webhook-id.
    hooks.route("/refuses", vec![Reply::status(200)]);
    let refused_log = stack.deliveries(&project.private_key, &refused).await;
    let delivery_id = refused_log["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/convert/batch/{refused}/deliveries/{delivery_id}/redeliver");
    let resp = stack.post(&project.private_key, &path, &json!({})).await;
    assert_eq!(resp.status(), 202);
    let seen = hooks.wait_for("/refuses", 2, WAIT).await;
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("webhook-id"), delivery_id);
    assert_eq!(seen[0].header("webhook-id"), delivery_id);
    let log = stack
        .wait_deliveries(&project.private_key, &refused, 1, WAIT)
        .await;
    assert_eq!(log[0]["status"], "sent");
    let codes: Vec<i64> = log[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![404, 200]);
    // A redelivery that fails again is one attempt, not a new schedule.
    let exhausted_id =
        stack.deliveries(&project.private_key, &exhausted).await["deliveries"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
    let resp = stack
        .post(
            &project.private_key,
            &format!("/v1/convert/batch/{exhausted}/deliveries/{exhausted_id}/redeliver"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let log = stack
        .wait_deliveries(&project.private_key, &exhausted, 1, WAIT)
        .await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["attempts"].as_array().unwrap().len(), 5);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hooks.seen("/dead-then-ok").len(), 5);

    // Unknown deliveries and other projects' batches are 404.
    let other = stack.project("pro", "other@example.com").await;
    let resp = stack.post(&other.private_key, &path, &json!({})).await;
    assert_eq!(resp.status(), 404);
    let resp = stack
        .post(
            &project.private_key,
            &format!(
                "/v1/convert/batch/{refused}/deliveries/{}/redeliver",
                Uuid::new_v4()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 404);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_answers_too_slowly_times_out_and_is_retried() {
    let stack = Stack::start(StackOptions {
        webhook_timeout: Duration::from_secs(2),
        retry_schedule: secs(&[1]),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("SLOW"))]);
    let slow = HttpPeer::start().await;
    slow.route(
        "/slow",
        vec![Reply::status(200).with_delay(Duration::from_secs(10))],
    );
    let project = webhook_only_project(&stack).await;
    let batch_id = stack
        .submit(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/p"), "async_mode": true, "callback_url": slow.url("/slow")}),
        )
        .await;
    let log = stack
        .wait_deliveries(&project.private_key, &batch_id, 1, WAIT)
        .await;
    let d = &log[0];
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["last_error"], "no answer within 2 s (timed out)");
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "a timeout is retried: {d}");
    for a in attempts {
        assert!(a["status_code"].is_null());
        assert!(a["response_body"].is_null());
        assert_eq!(a["error"], "no answer within 2 s (timed out)");
        let latency = a["latency_ms"].as_i64().unwrap();
        assert!((1_900..6_000).contains(&latency), "{latency}");
    }
    let seen = slow.seen("/slow");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("webhook-id"), seen[1].header("webhook-id"));
    stack.stop().await;
}

/// Inserts a due webhook notification, as the notifier's event handler would.
async fn due_webhook(stack: &Stack, batch_id: &str, url: &str, receiver: &str) -> Uuid {
    use diesel::ExpressionMethods;
    use diesel_async::RunQueryDsl;
    use enconvert_db::schema::notifications;
    let id = Uuid::now_v7();
    let mut conn = stack.db.conn().await.unwrap();
    diesel::insert_into(notifications::table)
        .values((
            notifications::id.eq(id),
            notifications::batch_id.eq(batch_id.parse::<Uuid>().unwrap()),
            notifications::subject.eq(format!("test-{id}")),
            notifications::channel.eq("webhook"),
            notifications::target.eq(url),
            notifications::body.eq(format!(r#"{{"job_id":"{id}","status":"success"}}"#)),
            notifications::receiver.eq(receiver),
            notifications::max_attempts.eq(1),
            notifications::next_attempt_at.eq(chrono::Utc::now()),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_receiver_never_delays_other_deliveries() {
    // The notifier sends 16 at once, at most 4 to one receiver.
    let stack = Stack::start(StackOptions {
        webhook_timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .await;
    assert_eq!(stack.settings.notifier.concurrency, 16);
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("LANES"))]);
    let slow = HttpPeer::start().await;
    slow.route(
        "/slow",
        vec![Reply::status(200).with_delay(Duration::from_secs(30))],
    );
    let fast = HttpPeer::start().await;
    fast.route("/fast", vec![Reply::status(204)]);
    let project = webhook_only_project(&stack).await;
    let batch_id = stack
        .submit(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/p"), "async_mode": true}),
        )
        .await;
    stack
        .wait_batch(&project.private_key, &batch_id, WAIT)
        .await;

    // Five deliveries to a receiver that never answers in time, all due at once.
    let slow_lane = slow.addr.to_string();
    for _ in 0..5 {
        due_webhook(&stack, &batch_id, &slow.url("/slow"), &slow_lane).await;
    }
    let held = slow.wait_for("/slow", 4, WAIT).await;
    assert_eq!(held.len(), 4, "the slow receiver's lane holds four");
    // Another receiver's delivery goes out at once, while the slow ones hang.
    let fast_id = due_webhook(
        &stack,
        &batch_id,
        &fast.url("/fast"),
        &fast.addr.to_string(),
    )
    .await;
    let got = fast.wait_for("/fast", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("webhook-id"), fast_id.to_string());
    assert!(
        got[0].at < held[0].at + Duration::from_secs(5),
        "delivered while the slow receiver held its lane"
    );
    assert_eq!(
        slow.seen("/slow").len(),
        4,
        "the fifth slow delivery waits for its own lane, not the others"
    );

    // The slow ones time out; the fifth goes out when a place in its lane frees.
    let log = stack
        .wait_deliveries(&project.private_key, &batch_id, 6, WAIT)
        .await;
    let timed_out = log
        .iter()
        .filter(|d| d["attempts"][0]["error"] == "no answer within 5 s (timed out)")
        .count();
    assert_eq!(timed_out, 5, "{log:?}");
    assert_eq!(slow.seen("/slow").len(), 5);
    let sent: Vec<&Value> = log.iter().filter(|d| d["status"] == "sent").collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["id"], fast_id.to_string());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_owner_email_can_be_turned_off_and_webhooks_need_the_plan() {
    let smtp = SmtpPeer::start();
    let stack = Stack::start(StackOptions {
        smtp: Some(smtp.addr),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("OWNER"))]);
    let project = stack.project("starter", "owner@example.com").await;
    let settings = "/v1/project/settings";

    // The plan refusal: starter has no webhooks.
    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/p"), "async_mode": true, "callback_url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "forbidden");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Webhook callbacks (callback_url) is not available on your current plan"),
        "{body}"
    );

    // The settings API: private keys only, a boolean only.
    let read: Value = stack
        .get(&project.private_key, settings)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, json!({"default_email_enabled": true}));
    let put = |key: String, body: Value| {
        let http = stack.http.clone();
        let url = format!("{}{settings}", stack.base);
        async move {
            http.put(url)
                .header("X-API-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let resp = put(
        project.public_key.clone(),
        json!({"default_email_enabled": false}),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let resp = put(
        project.private_key.clone(),
        json!({"default_email_enabled": "no"}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("default_email_enabled")
    );
    let resp = put(
        project.private_key.clone(),
        json!({"default_email_enabled": false}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"default_email_enabled": false})
    );

    // Off: no email to the owner...
    let quiet = stack
        .submit(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/p"), "async_mode": true}),
        )
        .await;
    stack.wait_batch(&project.private_key, &quiet, WAIT).await;
    // ...but an explicit notification_email still sends.
    let explicit = stack.submit(&project.private_key, "/v1/convert/url-to-pdf", &json!({"url": site.url("/p"), "async_mode": true, "notification_email": "me@example.com"}))
    .await;
    let mails = smtp.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt, vec!["me@example.com".to_string()]);
    assert!(mails[0].html().contains(&explicit));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(smtp.mails().len(), 1, "nothing went to the owner");
    let log = stack.deliveries(&project.private_key, &quiet).await;
    assert_eq!(log["deliveries"], json!([]), "{log}");

    // On again: the owner is told.
    let resp = put(
        project.private_key.clone(),
        json!({"default_email_enabled": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let loud = stack
        .submit(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/p"), "async_mode": true}),
        )
        .await;
    let mails = smtp.wait_for(2, WAIT).await;
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1].rcpt, vec!["owner@example.com".to_string()]);
    assert!(mails[1].html().contains(&loud));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicated_event_delivers_once_and_a_lost_outcome_is_resent_once() {
    use diesel::ExpressionMethods;
    use diesel_async::RunQueryDsl;

    let smtp = SmtpPeer::start();
    let stack = Stack::start(StackOptions {
        smtp: Some(smtp.addr),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("DUP"))]);
    let hooks = HttpPeer::start().await;
    hooks.route("/hook", vec![Reply::status(200)]);
    hooks.route("/crash", vec![Reply::status(200)]);
    let project = stack.project("pro", "owner@example.com").await;
    let batch_id = stack
        .submit(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": site.url("/p"), "async_mode": true, "callback_url": hooks.url("/hook")}),
        )
        .await;
    stack
        .wait_deliveries(&project.private_key, &batch_id, 2, WAIT)
        .await;
    assert_eq!(hooks.seen("/hook").len(), 1);
    assert_eq!(smtp.mails().len(), 1);

    // The same completion event, twice more.
    let job = {
        let mut conn = stack.db.conn().await.unwrap();
        enconvert_db::batches::jobs_of(&mut conn, batch_id.parse().unwrap())
            .await
            .unwrap()
            .remove(0)
    };
    let event = || {
        enconvert_queue::messages::job_completed(&enconvert_domain::events::JobCompleted {
            job_id: job.id,
            batch_id: job.batch_id,
            project_id: job.project_id,
            status: enconvert_domain::JobStatus::Success,
            output_mode: enconvert_domain::OutputMode::Individual,
        })
    };
    stack.publish(&[event(), event()]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hooks.seen("/hook").len(), 1, "one webhook");
    assert_eq!(smtp.mails().len(), 1, "one email");
    assert_eq!(
        stack.deliveries(&project.private_key, &batch_id).await["deliveries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A notifier that died after sending but before recording left this behind: attempt 1
    // taken, no outcome, its lease run out. The notification is sent once more, under the
    // same id, and the lost attempt is marked in the log.
    let lost = Uuid::now_v7();
    {
        use enconvert_db::schema::{notification_attempts, notifications};
        let mut conn = stack.db.conn().await.unwrap();
        diesel::insert_into(notifications::table)
            .values((
                notifications::id.eq(lost),
                notifications::batch_id.eq(job.batch_id),
                notifications::subject.eq(format!("crash-{lost}")),
                notifications::channel.eq("webhook"),
                notifications::attempts.eq(1),
                notifications::target.eq(hooks.url("/crash")),
                notifications::body.eq(r#"{"job_id":"crash"}"#),
                notifications::receiver.eq(format!("{}", hooks.addr)),
                notifications::max_attempts.eq(8),
                notifications::next_attempt_at
                    .eq(chrono::Utc::now() - chrono::Duration::seconds(1)),
            ))
            .execute(&mut conn)
            .await
            .unwrap();
        diesel::insert_into(notification_attempts::table)
            .values((
                notification_attempts::id.eq(Uuid::now_v7()),
                notification_attempts::notification_id.eq(lost),
                notification_attempts::attempt.eq(1),
            ))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let seen = hooks.wait_for("/crash", 1, WAIT).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("webhook-id"), lost.to_string());
    let log = stack
        .wait_deliveries(&project.private_key, &batch_id, 3, WAIT)
        .await;
    let d = log.iter().find(|d| d["id"] == lost.to_string()).unwrap();
    assert_eq!(d["status"], "sent");
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("no outcome was recorded")
    );
    assert_eq!(attempts[1]["status_code"], 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hooks.seen("/crash").len(), 1, "resent at most once");
    stack.stop().await;
}
