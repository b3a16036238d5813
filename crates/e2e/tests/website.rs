//! End-to-end: website conversions on local multi-page sites served on 127.0.0.1. Discovery
//! (robots.txt, sitemaps, crawl) runs in the worker; every page is rendered by Chromium and
//! delivered in one ZIP. No request leaves the loopback interface.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::io::Write;
use std::time::Duration;

use enconvert_e2e::peers::{HttpPeer, Reply};
use enconvert_e2e::{Stack, StackOptions, pdf_text};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);

/// An HTML page whose text names it, with links.
fn page(name: &str, links: &[&str]) -> Reply {
    let anchors: String = links
        .iter()
        .map(|l| format!("<li><a href=\"{l}\">{l}</a></li>"))
        .collect();
    Reply::html(&format!(
        "<!doctype html><html><head><title>{name}</title></head><body><h1>Page {name}</h1><ul>{anchors}</ul></body></html>"
    ))
}

fn typed(content_type: &'static str, body: Vec<u8>) -> Reply {
    Reply {
        content_type,
        body,
        ..Reply::status(200)
    }
}

fn xml(body: &str) -> Reply {
    typed("application/xml", body.as_bytes().to_vec())
}

fn urlset(urls: &[String]) -> String {
    let entries: String = urls
        .iter()
        .map(|u| format!("<url><loc>{u}</loc></url>"))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>"#
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

async fn submit(stack: &Stack, key: &str, path: &str, body: Value) -> Value {
    let resp = stack.post(key, path, &body).await;
    assert_eq!(resp.status(), 202, "{body}");
    resp.json().await.unwrap()
}

/// The ZIP of a finished batch: (entry name, bytes) in archive order.
async fn zip_entries(status: &Value) -> Vec<(String, Vec<u8>)> {
    let link = status["zip_download_url"]
        .as_str()
        .unwrap_or_else(|| panic!("a ZIP link: {status}"));
    let resp = reqwest::get(link).await.unwrap();
    assert_eq!(resp.status(), 200);
    let zip = resp.bytes().await.unwrap().to_vec();
    let reader = async_zip::base::read::mem::ZipFileReader::new(zip)
        .await
        .unwrap();
    let mut out = Vec::new();
    for i in 0..reader.file().entries().len() {
        let name = reader.file().entries()[i]
            .filename()
            .as_str()
            .unwrap()
            .to_string();
        let mut entry = reader.reader_with_entry(i).await.unwrap();
        let mut data = Vec::new();
        entry.read_to_end_checked(&mut data).await.unwrap();
        out.push((name, data));
    }
    out
}

fn sources(status: &Value) -> Vec<String> {
    status["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["source_url"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sitemap_mode_renders_exactly_the_sitemaps_pages() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    let other = HttpPeer::start().await;
    let s = |p: &str| site.url(p);
    // Our group replaces the `*` group, so /private is repeated there.
    site.route(
        "/robots.txt",
        vec![typed(
            "text/plain",
            format!(
                "User-agent: *\nDisallow: /private\n\nUser-agent: Enconvert\nDisallow: /private\nDisallow: /hidden\n\nSitemap: {}\n",
                s("/sitemap_index.xml")
            )
            .into_bytes(),
        )],
    );
    site.route(
        "/sitemap_index.xml",
        vec![xml(&format!(
            r#"<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <sitemap><loc>{}</loc></sitemap><sitemap><loc>{}</loc></sitemap><sitemap><loc>{}</loc></sitemap>
            </sitemapindex>"#,
            s("/sitemap-pages.xml"),
            s("/sitemap-more.xml.gz"),
            other.url("/sitemap.xml"),
        ))],
    );
    site.route(
        "/sitemap-pages.xml",
        vec![xml(&urlset(&[
            s("/"),
            s("/docs/intro"),
            s("/docs/intro/"),
            s("/docs/intro#part-2"),
            s("/private/secret"),
            s("/hidden"),
            s("/style.css"),
            other.url("/foreign"),
        ]))],
    );
    site.route(
        "/sitemap-more.xml.gz",
        vec![typed(
            "application/gzip",
            gzip(urlset(&[s("/blog/post-1")]).as_bytes()),
        )],
    );
    site.route("/", vec![page("HOME", &["/orphan", "/docs/intro"])]);
    site.route("/docs/intro", vec![page("INTRO", &["/"])]);
    site.route("/blog/post-1", vec![page("POST1", &[])]);
    site.route("/orphan", vec![page("ORPHAN", &[])]);
    site.route("/private/secret", vec![page("SECRET", &[])]);
    site.route("/hidden", vec![page("HIDDEN", &[])]);

    let project = stack.project("starter", "owner@example.com").await;
    let accepted = submit(
        &stack,
        &project.private_key,
        "/v1/convert/website-to-pdf",
        json!({"url": s("/")}),
    )
    .await;
    assert_eq!(accepted["status"], "processing", "{accepted}");
    assert_eq!(accepted["discovery"], "done", "{accepted}");
    assert_eq!(accepted["discovery_method"], "sitemap", "auto on starter");
    assert_eq!(accepted["url_count"], 3, "{accepted}");
    assert_eq!(accepted["total_discovered"], 3, "{accepted}");
    assert_eq!(accepted["output_format"], "zip");

    let status = stack
        .wait_batch(
            &project.private_key,
            accepted["batch_id"].as_str().unwrap(),
            WAIT,
        )
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["output_mode"], "zip");
    assert_eq!(status["discovery"], "done");
    assert_eq!(
        sources(&status),
        [s("/"), s("/docs/intro"), s("/blog/post-1")],
        "the sitemap's pages in its order, once each"
    );
    let entries = zip_entries(&status).await;
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["index.pdf", "docs_intro.pdf", "blog_post-1.pdf"],
        "named from the URL paths"
    );
    for ((_, data), token) in entries.iter().zip(["HOME", "INTRO", "POST1"]) {
        assert!(data.starts_with(b"%PDF-"));
        let text = pdf_text(data);
        assert!(text.contains(&format!("Page {token}")), "{token}: {text}");
    }

    // Sitemap mode follows no link; robots.txt keeps us out; other sites are not contacted.
    for path in ["/orphan", "/private/secret", "/hidden", "/style.css"] {
        assert!(site.seen(path).is_empty(), "{path} was requested");
    }
    for path in ["/sitemap.xml", "/foreign"] {
        assert!(
            other.seen(path).is_empty(),
            "the other site's {path} was requested"
        );
    }
    assert_eq!(site.seen("/sitemap-more.xml.gz").len(), 1);
    let ua = &site.seen("/robots.txt")[0].headers["user-agent"];
    assert!(ua.contains("Enconvert"), "{ua}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_mode_crawls_links_the_sitemap_lacks() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    let other = HttpPeer::start().await;
    other.route("/", vec![page("OTHER", &[])]);
    let hooks = HttpPeer::start().await;
    hooks.route("/hook", vec![Reply::status(200)]);
    let s = |p: &str| site.url(p);
    site.route(
        "/robots.txt",
        vec![typed(
            "text/plain",
            b"User-agent: *\nDisallow: /private\n".to_vec(),
        )],
    );
    // No Sitemap line: /sitemap.xml is where the sitemap is looked for.
    site.route(
        "/sitemap.xml",
        vec![xml(&urlset(&[s("/"), s("/from-sitemap")]))],
    );
    let external = other.url("/");
    site.route(
        "/",
        vec![page(
            "HOME",
            &[
                "/about",
                "/about/",
                "/about#team",
                "/blog",
                external.as_str(),
                "/private/x",
                "/admin/login",
                "/files/report.pdf",
                "/list?page=9",
                "/drafts/wip",
                "/missing",
                "/moved",
                "/away",
            ],
        )],
    );
    // A redirect is not a page; its target on the site is. Off the site it is dropped.
    site.route(
        "/moved",
        vec![Reply::status(301).with_header("Location", "/landing")],
    );
    site.route("/landing", vec![page("LANDING", &["/moved"])]);
    site.route(
        "/away",
        vec![Reply::status(302).with_header("Location", &other.url("/"))],
    );
    site.route("/from-sitemap", vec![page("FROMSITEMAP", &[])]);
    site.route("/about", vec![page("ABOUT", &["/", "/about"])]);
    site.route("/blog", vec![page("BLOG", &["/blog/post-1", "/"])]);
    site.route("/blog/post-1", vec![page("POST1", &["/blog", "/"])]);
    site.route("/missing", vec![Reply::status(404)]);
    for p in ["/private/x", "/admin/login", "/drafts/wip", "/list"] {
        site.route(p, vec![page("NOPE", &[])]);
    }

    let project = stack.project("pro", "owner@example.com").await;
    let accepted = submit(
        &stack,
        &project.private_key,
        "/v1/convert/website-to-screenshot",
        json!({
            "url": s("/"),
            "crawl_mode": "full",
            "exclude_patterns": ["/drafts/"],
            "viewport_width": 800,
            "viewport_height": 600,
            "callback_url": hooks.url("/hook"),
        }),
    )
    .await;
    assert_eq!(accepted["discovery_method"], "full_crawl", "{accepted}");
    assert_eq!(accepted["url_count"], 7, "{accepted}");
    assert_eq!(accepted["total_discovered"], 7, "{accepted}");

    let status = stack
        .wait_batch(
            &project.private_key,
            accepted["batch_id"].as_str().unwrap(),
            WAIT,
        )
        .await;
    // Breadth first: the start, the sitemap's page, then links level by level.
    assert_eq!(
        sources(&status),
        [
            s("/"),
            s("/from-sitemap"),
            s("/about"),
            s("/blog"),
            s("/missing"),
            s("/blog/post-1"),
            s("/landing"),
        ],
        "{status}"
    );
    assert_eq!(status["status"], "partial", "the 404 page failed: {status}");
    assert_eq!(status["items"][4]["status"], "Failed");
    assert_eq!(status["items"][4]["error"], "The page answered HTTP 404");

    let entries = zip_entries(&status).await;
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "index.png",
            "from-sitemap.png",
            "about.png",
            "blog.png",
            "blog_post-1.png",
            "landing.png"
        ]
    );
    for (name, data) in &entries {
        let reader = png::Decoder::new(std::io::Cursor::new(data.as_slice()))
            .read_info()
            .unwrap_or_else(|e| panic!("{name} is a PNG: {e}"));
        assert_eq!(reader.info().width, 800, "{name}");
    }

    // Once fetched by discovery and once rendered: `/about`, `/about/` and `/about#team` are
    // one page, and the cycles back to `/` and `/blog` are not followed again.
    assert_eq!(site.seen("/about").len(), 2);
    assert_eq!(site.seen("/about/").len(), 0);
    assert_eq!(site.seen("/").len(), 2);
    assert_eq!(site.seen("/blog").len(), 2);
    assert_eq!(
        site.seen("/moved").len(),
        1,
        "fetched by discovery, not rendered"
    );
    assert_eq!(site.seen("/away").len(), 1);
    for path in [
        "/private/x",
        "/admin/login",
        "/files/report.pdf",
        "/list",
        "/drafts/wip",
    ] {
        assert!(site.seen(path).is_empty(), "{path} was requested");
    }
    assert!(other.seen("/").is_empty(), "the external link was followed");

    // ZIP mode notification: one webhook for the batch, listing every page.
    let seen = hooks.wait_for("/hook", 1, WAIT).await;
    assert_eq!(seen.len(), 1);
    let hook: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(hook["status"], "success", "{hook}");
    assert_eq!(hook["total_tasks"], 7);
    assert_eq!(hook["failed_tasks"], 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn patterns_and_the_page_cap_apply() {
    let stack = Stack::start(StackOptions::default()).await;
    {
        use diesel_async::RunQueryDsl;
        let mut conn = stack.db.conn().await.unwrap();
        diesel::sql_query("UPDATE plans SET batch_limit = 3 WHERE name = 'pro'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let site = HttpPeer::start().await;
    let s = |p: &str| site.url(p);
    site.route(
        "/",
        vec![page(
            "HOME",
            &[
                "/other", "/docs/1", "/docs/2", "/docs/3", "/docs/4", "/docs/5", "/docs/6",
            ],
        )],
    );
    for i in 1..=6 {
        site.route(&format!("/docs/{i}"), vec![page(&format!("DOC{i}"), &[])]);
    }
    site.route("/other", vec![page("OTHER", &[])]);
    let project = stack.project("pro", "owner@example.com").await;

    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/website-to-pdf",
            &json!({"url": s("/"), "include_patterns": ["(unclosed"]}),
        )
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "invalid_request");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("include_patterns[0]"),
        "{body}"
    );

    let accepted = submit(
        &stack,
        &project.private_key,
        "/v1/convert/website-to-pdf",
        json!({
            "url": s("/"),
            "crawl_mode": "full",
            "include_patterns": ["/docs/"],
            "exclude_patterns": ["/docs/4$"],
        }),
    )
    .await;
    assert_eq!(
        accepted["url_count"], 3,
        "the plan's batch_limit: {accepted}"
    );
    assert_eq!(
        accepted["total_discovered"], 5,
        "docs 1-6 without 4: {accepted}"
    );
    let status = stack
        .wait_batch(
            &project.private_key,
            accepted["batch_id"].as_str().unwrap(),
            WAIT,
        )
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["total"], 3);
    assert_eq!(status["total_discovered"], 5);
    assert_eq!(
        sources(&status),
        [s("/docs/1"), s("/docs/2"), s("/docs/3")],
        "only included pages are rendered; the start page is crawled, not rendered"
    );
    let entries = zip_entries(&status).await;
    assert_eq!(entries.len(), 3);
    for (i, (name, data)) in entries.iter().enumerate() {
        assert_eq!(name, &format!("docs_{}.pdf", i + 1));
        let text = pdf_text(data);
        assert!(
            text.contains(&format!("Page DOC{}", i + 1)),
            "{name}: {text}"
        );
    }
    assert_eq!(site.seen("/").len(), 1, "crawled, not rendered");
    assert!(site.seen("/docs/4").is_empty(), "excluded");
    assert!(site.seen("/docs/5").is_empty(), "past the cap");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_that_fails_or_times_out_makes_the_batch_partial() {
    // Long enough for a good page on a loaded machine, far shorter than the slow page's delay.
    let stack = Stack::start(StackOptions {
        render_timeout: Duration::from_secs(12),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    let s = |p: &str| site.url(p);
    site.route(
        "/sitemap.xml",
        vec![xml(&urlset(&[s("/ok"), s("/missing"), s("/slow")]))],
    );
    site.route("/ok", vec![page("OK", &[])]);
    site.route("/missing", vec![Reply::status(404)]);
    site.route(
        "/slow",
        vec![page("SLOW", &[]).with_delay(Duration::from_secs(40))],
    );
    let project = stack.project("starter", "owner@example.com").await;
    let accepted = submit(
        &stack,
        &project.private_key,
        "/v1/convert/website-to-pdf",
        json!({"url": s("/ok"), "crawl_mode": "sitemap"}),
    )
    .await;
    assert_eq!(accepted["url_count"], 3, "{accepted}");
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
        (Some(1), Some(2))
    );
    let items = status["items"].as_array().unwrap();
    assert_eq!(items[0]["status"], "Success");
    assert_eq!(items[1]["status"], "Failed");
    assert_eq!(items[1]["error"], "The page answered HTTP 404");
    assert_eq!(items[2]["status"], "Failed");
    assert!(
        items[2]["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("timeout"),
        "{}",
        items[2]
    );
    let entries = zip_entries(&status).await;
    assert_eq!(entries.len(), 1, "failed pages are left out of the ZIP");
    assert_eq!(entries[0].0, "ok.pdf");
    assert!(pdf_text(&entries[0].1).contains("Page OK"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gating_slow_discovery_and_sites_without_pages() {
    let stack = Stack::start(StackOptions {
        discovery_wait: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    let s = |p: &str| site.url(p);
    let starter = stack.project("starter", "owner@example.com").await;
    let free = stack.project("free", "owner@example.com").await;
    let path = "/v1/convert/website-to-pdf";

    let refused = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), 403);
        let body: Value = resp.json().await.unwrap();
        body["detail"].as_str().unwrap().to_string()
    };
    let d = refused(
        stack
            .post(&starter.public_key, path, &json!({"url": s("/")}))
            .await,
    )
    .await;
    assert!(
        d.starts_with("Website conversion is not allowed with a public key"),
        "{d}"
    );
    let d = refused(
        stack
            .post(
                &free.private_key,
                "/v1/convert/website-to-screenshot",
                &json!({"url": s("/")}),
            )
            .await,
    )
    .await;
    assert!(
        d.starts_with(
            "Website discovery (crawl_mode) is not available on your current plan (free)"
        ),
        "{d}"
    );
    let d = refused(
        stack
            .post(
                &starter.private_key,
                path,
                &json!({"url": s("/"), "crawl_mode": "full"}),
            )
            .await,
    )
    .await;
    assert!(
        d.starts_with(
            "Full website crawl (crawl_mode full) is not available on your current plan (starter)"
        ),
        "{d}"
    );

    // Discovery outlasting the api's wait: the 202 comes without the counts.
    site.route(
        "/sitemap.xml",
        vec![xml(&urlset(&[s("/only")])).with_delay(Duration::from_secs(4))],
    );
    site.route("/only", vec![page("ONLY", &[])]);
    let accepted = submit(&stack, &starter.private_key, path, json!({"url": s("/")})).await;
    assert_eq!(accepted["status"], "processing");
    assert_eq!(accepted["discovery"], "in_progress", "{accepted}");
    assert!(accepted["url_count"].is_null(), "{accepted}");
    assert!(accepted["total_discovered"].is_null(), "{accepted}");
    assert_eq!(accepted["discovery_method"], "sitemap");
    let batch_id = accepted["batch_id"].as_str().unwrap();
    let early: Value = stack
        .get(
            &starter.private_key,
            &format!("/v1/convert/batch/{batch_id}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(early["status"], "processing", "{early}");
    assert_eq!(early["discovery"], "in_progress", "{early}");
    let status = stack.wait_batch(&starter.private_key, batch_id, WAIT).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(sources(&status), [s("/only")]);
    assert_eq!(status["discovery"], "done");

    // A site without a sitemap, in sitemap mode: nothing to render, the batch fails with why.
    let empty = HttpPeer::start().await;
    let accepted = submit(
        &stack,
        &starter.private_key,
        path,
        json!({"url": empty.url("/")}),
    )
    .await;
    if accepted["discovery"] == "failed" {
        assert_eq!(accepted["status"], "failed");
        assert_eq!(accepted["url_count"], 0);
    }
    let status = stack
        .wait_batch(
            &starter.private_key,
            accepted["batch_id"].as_str().unwrap(),
            WAIT,
        )
        .await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["discovery"], "failed");
    assert_eq!(status["total"], 0);
    assert!(status["items"].as_array().unwrap().is_empty());
    assert!(status["zip_download_url"].is_null());
    assert!(
        status["error"].as_str().unwrap().contains("No sitemap"),
        "{status}"
    );

    // Both endpoints are in the OpenAPI document.
    let doc: Value = stack
        .http
        .get(format!("{}/openapi.json", stack.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for p in [
        "/v1/convert/website-to-pdf",
        "/v1/convert/website-to-screenshot",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} documented");
    }
    stack.stop().await;
}
