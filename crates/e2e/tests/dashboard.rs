//! The dashboard end to end: a real headless Chromium signs in with a private key, watches a
//! batch finish, opens an item, downloads its file and redelivers a webhook; plain HTTP
//! shows what is refused (no session, a missing or wrong CSRF token, a wrong key, another
//! project's batch, a signed-out, revoked or expired session).

#![expect(clippy::unwrap_used, reason = "tests")]

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use enconvert_e2e::peers::{HttpPeer, Reply, SmtpPeer};
use enconvert_e2e::{Stack, StackOptions};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

fn page(title: &str) -> String {
    format!(
        "<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1><p>Quarterly figures, page one.</p></body></html>"
    )
}

/// Chromium with the worker's launch flags.
fn launch(stack: &Stack, size: (u32, u32)) -> Browser {
    let args: Vec<&OsStr> = enconvert_worker::browser::FLAGS
        .iter()
        .map(OsStr::new)
        .collect();
    Browser::new(LaunchOptions {
        headless: true,
        sandbox: false,
        path: Some(stack.settings.worker.chromium_path.clone()),
        args,
        window_size: Some(size),
        idle_browser_timeout: Duration::from_secs(600),
        ..LaunchOptions::default()
    })
    .unwrap()
}

/// Runs blocking browser calls off the async workers.
async fn on<T: Send + 'static>(tab: &Arc<Tab>, f: impl FnOnce(&Tab) -> T + Send + 'static) -> T {
    let tab = tab.clone();
    tokio::task::spawn_blocking(move || f(&tab)).await.unwrap()
}

/// The value of a JavaScript expression in the page (`None` while a page is loading).
async fn js(tab: &Arc<Tab>, expr: &str) -> Option<Value> {
    // Through JSON, so arrays and objects come back as values, not as references.
    let expr = format!("JSON.stringify(({expr}))");
    on(tab, move |t| {
        t.evaluate(&expr, false)
            .ok()
            .and_then(|r| r.value)
            .and_then(|v| v.as_str().and_then(|s| serde_json::from_str(s).ok()))
    })
    .await
}

/// Polls `expr` until `ok` holds; panics after `within`.
async fn wait_js(
    tab: &Arc<Tab>,
    expr: &str,
    ok: impl Fn(&Value) -> bool,
    within: Duration,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let v = js(tab, expr).await;
        if let Some(v) = &v
            && ok(v)
        {
            return v.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{expr}` is still {v:?} at {}",
            tab.get_url()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn goto(tab: &Arc<Tab>, url: &str) {
    let url = url.to_string();
    on(tab, move |t| {
        t.navigate_to(&url).unwrap().wait_until_navigated().unwrap();
    })
    .await;
}

/// Waits until the tab has left `before` and the new page has loaded.
async fn left(tab: &Arc<Tab>, before: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tab.get_url() == before {
        assert!(tokio::time::Instant::now() < deadline, "still at {before}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_js(tab, "document.readyState", |v| v == "complete", WAIT).await;
}

/// Clicks the element (a real mouse click) and waits for the page it leads to.
async fn click(tab: &Arc<Tab>, selector: &str) {
    let selector = selector.to_string();
    let before = tab.get_url();
    on(tab, move |t| {
        t.wait_for_element(&selector).unwrap().click().unwrap();
    })
    .await;
    left(tab, &before).await;
}

/// Signs in on the sign-in page the browser is showing.
async fn sign_in(tab: &Arc<Tab>, key: &str) {
    let key = key.to_string();
    on(tab, move |t| {
        t.wait_for_element("input#key")
            .unwrap()
            .click()
            .unwrap()
            .type_into(&key)
            .unwrap();
    })
    .await;
    click(tab, "form.login button[type=submit]").await;
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_follows_a_batch_on_the_dashboard_in_chromium() {
    let smtp = SmtpPeer::start();
    let stack = Stack::start(StackOptions {
        smtp: Some(smtp.addr),
        ..Default::default()
    })
    .await;
    let site = HttpPeer::start().await;
    site.route("/report", vec![Reply::html(&page("Report"))]);
    site.route("/missing", vec![Reply::status(404)]);
    let hooks = HttpPeer::start().await;
    hooks.route("/hook", vec![Reply::status(200)]);
    let project = stack.project("pro", "owner@example.com").await;

    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({
                "url": [site.url("/report"), site.url("/missing")],
                "notification_email": "team@example.com",
                "callback_url": hooks.url("/hook"),
            }),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let batch_id = resp.json::<Value>().await.unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    let batch_url = format!("{}/dashboard/batches/{batch_id}", stack.base);

    let browser = launch(&stack, (1280, 900));
    let tab = browser.new_tab().unwrap();

    // Without a session the batch page sends the browser to the sign-in form...
    goto(&tab, &batch_url).await;
    assert!(
        tab.get_url().contains("/dashboard/login?next="),
        "{}",
        tab.get_url()
    );
    // ... which brings it back to the batch once the private key is accepted.
    sign_in(&tab, &project.private_key).await;
    assert_eq!(tab.get_url(), batch_url);
    assert!(
        !tab.get_url().contains(&project.private_key),
        "the key is never in a URL"
    );
    let heading = wait_js(
        &tab,
        "document.querySelector('h1').textContent",
        Value::is_string,
        WAIT,
    )
    .await;
    assert!(text(&heading).contains(&batch_id), "{heading}");

    // The page follows the batch until it is final (the script reloads it then).
    let status = wait_js(
        &tab,
        "document.querySelector('#batch-status').textContent",
        |v| v.as_str().is_some_and(|s| s != "processing"),
        WAIT,
    )
    .await;
    assert_eq!(status, "partial");
    let bar = wait_js(
        &tab,
        "(() => { const p = document.querySelector('#progress progress'); return [p.value, p.max, p.getAttribute('aria-label')]; })()",
        Value::is_array,
        WAIT,
    )
    .await;
    assert_eq!(bar, json!([2, 2, "Progress of this batch"]));
    let progress_text = js(&tab, "document.querySelector('#progress-text').textContent")
        .await
        .unwrap();
    assert_eq!(progress_text, "1 done, 1 failed, 0 in progress, 2 in all.");
    let rows = js(
        &tab,
        "[...document.querySelectorAll('table.items tbody tr')].map(r => [...r.cells].map(c => c.textContent.trim()))",
    )
    .await
    .unwrap();
    assert_eq!(rows[0][1], site.url("/report"));
    assert_eq!(rows[0][2], "success");
    assert!(text(&rows[0][3]).ends_with(" s"), "a duration: {rows}");
    assert_eq!(rows[1][2], "failed");
    assert_eq!(rows[1][4], "The page answered HTTP 404");
    assert_eq!(rows[1][5], "no file");

    // The batch list shows it, newest first, with its counts.
    goto(&tab, &format!("{}/dashboard", stack.base)).await;
    let listed = js(
        &tab,
        "[...document.querySelectorAll('table.batches tbody tr')].map(r => [r.querySelector('a').getAttribute('href'), r.querySelector('.counts').textContent])",
    )
    .await
    .unwrap();
    assert_eq!(
        listed,
        json!([[
            format!("/dashboard/batches/{batch_id}"),
            "1 done, 1 failed, 2 total"
        ]])
    );

    // Open the item, and download its file.
    goto(&tab, &batch_url).await;
    click(&tab, "table.items tbody tr:first-child a.item").await;
    assert!(tab.get_url().contains("/items/"), "{}", tab.get_url());
    let item_status = js(&tab, "document.querySelector('#item-status').textContent")
        .await
        .unwrap();
    assert_eq!(item_status, "success");
    let href = js(&tab, "document.querySelector('a.download').href")
        .await
        .unwrap();
    let file = reqwest::get(text(&href)).await.unwrap();
    assert_eq!(file.status(), 200, "{href}");
    let bytes = file.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF"), "a PDF from {href}");
    assert!(enconvert_e2e::pdf_text(&bytes).contains("Quarterly figures"));

    // The notification log: wait for both webhooks and emails to be final.
    let log = stack
        .wait_deliveries(&project.private_key, &batch_id, 4, WAIT)
        .await;
    let ok_job = stack
        .get(
            &project.private_key,
            &format!("/v1/convert/batch/{batch_id}"),
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["items"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let hook = log
        .iter()
        .find(|d| d["channel"] == "webhook" && d["job_id"] == ok_job.as_str())
        .unwrap();
    let hook_id = hook["id"].as_str().unwrap().to_string();
    assert_eq!(hook["attempts"].as_array().unwrap().len(), 1);
    goto(&tab, &batch_url).await;
    let row = format!("#delivery-{hook_id}");
    let attempts_expr = format!("document.querySelectorAll('{row} li.attempt').length");
    let n = wait_js(&tab, &attempts_expr, |v| v == 1, WAIT).await;
    assert_eq!(n, 1);
    let first = js(
        &tab,
        &format!("document.querySelector('{row} li.attempt').textContent"),
    )
    .await
    .unwrap();
    assert!(text(&first).contains("HTTP 200"), "{first}");

    // Press redeliver: one more attempt, same webhook-id, shown in the log.
    click(&tab, &format!("{row} button.redeliver")).await;
    let notice = js(&tab, "document.querySelector('.notice').textContent")
        .await
        .unwrap();
    assert!(text(&notice).contains("new delivery attempt"), "{notice}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = js(&tab, &attempts_expr).await;
        if n == Some(json!(2)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {n:?} attempts"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        goto(&tab, &batch_url).await;
    }
    let seen = hooks.seen("/hook");
    let same: Vec<_> = seen
        .iter()
        .filter(|s| s.header("webhook-id") == hook_id)
        .collect();
    assert_eq!(same.len(), 2, "the redelivery reached the receiver");
    assert_eq!(same[0].body, same[1].body);

    // The completion email's link opens this batch's page.
    let mails = smtp.wait_for(2, WAIT).await;
    let mail = mails.iter().find(|m| m.text().contains(&ok_job)).unwrap();
    let link = mail
        .text()
        .lines()
        .map(str::trim)
        .find(|l| l.contains("/dashboard/"))
        .unwrap()
        .to_string();
    assert_eq!(link, batch_url, "the email links to the batch page");
    assert!(mail.html().contains(&format!("href=\"{batch_url}\"")));
    goto(&tab, &format!("{}/dashboard", stack.base)).await;
    goto(&tab, &link).await;
    let heading = js(&tab, "document.querySelector('h1').textContent")
        .await
        .unwrap();
    assert!(text(&heading).contains(&batch_id), "{heading}");

    // Sign out: the batch page asks for the key again.
    click(&tab, "form.signout button").await;
    assert!(
        tab.get_url().contains("/dashboard/login"),
        "{}",
        tab.get_url()
    );
    goto(&tab, &batch_url).await;
    assert!(
        tab.get_url().contains("/dashboard/login?next="),
        "{}",
        tab.get_url()
    );

    drop(tab);
    drop(browser);
    stack.stop().await;
}

/// A client that follows no redirect and keeps cookies by hand.
struct Client {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Client {
    fn new(stack: &Stack) -> Self {
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: stack.base.clone(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for c in resp.headers().get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !v.is_empty() {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
    }

    async fn get(&mut self, path: &str, html: bool) -> reqwest::Response {
        let mut req = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header());
        if html {
            req = req.header(ACCEPT, "text/html");
        }
        let resp = req.send().await.unwrap();
        self.keep(&resp);
        resp
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        resp
    }

    /// Signs in through the form; returns the answer to the POST.
    async fn sign_in(&mut self, key: &str) -> reqwest::Response {
        let form = self
            .get("/dashboard/login", true)
            .await
            .text()
            .await
            .unwrap();
        let csrf = hidden(&form, "csrf");
        self.post(
            "/dashboard/login",
            &[("csrf", &csrf), ("key", key), ("next", "/dashboard")],
        )
        .await
    }
}

/// The value of a hidden input in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn key_count(stack: &Stack, project: uuid::Uuid) -> usize {
    let mut conn = stack.db.conn().await.unwrap();
    enconvert_db::projects::keys_of_project(&mut conn, project)
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_refuses_strangers_forged_forms_wrong_keys_and_other_projects() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/p", vec![Reply::html(&page("P"))]);
    let a = stack.project("pro", "a@example.com").await;
    let b = stack.project("pro", "b@example.com").await;
    let submit = |key: String| {
        let body = json!({"url": [site.url("/p")], "async_mode": true});
        let stack = &stack;
        async move {
            let resp = stack.post(&key, "/v1/convert/url-to-pdf", &body).await;
            assert_eq!(resp.status(), 202);
            resp.json::<Value>().await.unwrap()["batch_id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let a_batch = submit(a.private_key.clone()).await;
    let b_batch = submit(b.private_key.clone()).await;

    // No session: a program gets 401, a browser is sent to the sign-in page.
    let mut anon = Client::new(&stack);
    for path in [
        "/dashboard".to_string(),
        format!("/dashboard/batches/{a_batch}"),
        format!("/dashboard/batches/{a_batch}/progress"),
        "/dashboard/settings".to_string(),
    ] {
        let resp = anon.get(&path, false).await;
        assert_eq!(resp.status(), 401, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "signed_out", "{path}");
        assert!(body["detail"].as_str().unwrap().contains("Sign in"));
        let resp = anon.get(&path, true).await;
        assert_eq!(resp.status(), 303, "{path}");
        let to = resp.headers()[LOCATION].to_str().unwrap().to_string();
        let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        assert_eq!(to, format!("/dashboard/login?next={next}"));
    }
    for path in [
        "/dashboard/settings/keys".to_string(),
        "/dashboard/settings/webhook-secret".to_string(),
        "/dashboard/logout".to_string(),
    ] {
        let resp = anon.post(&path, &[("kind", "private")]).await;
        assert_eq!(resp.status(), 401, "{path}");
    }

    // The sign-in form's own CSRF token: a double-submit cookie.
    let mut person = Client::new(&stack);
    let resp = person.get("/dashboard/login", true).await;
    assert_eq!(resp.status(), 200);
    let set: Vec<String> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        set.iter().any(|c| c.starts_with("enconvert_login=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Strict")
            && c.contains("Path=/dashboard")),
        "{set:?}"
    );
    let form = resp.text().await.unwrap();
    assert!(form.contains("<label for=\"key\">Private key</label>"));
    let csrf = hidden(&form, "csrf");
    let missing = person
        .post("/dashboard/login", &[("key", &a.private_key)])
        .await;
    assert_eq!(missing.status(), 403, "no CSRF token");
    let wrong = person
        .post(
            "/dashboard/login",
            &[("csrf", "forged"), ("key", &a.private_key)],
        )
        .await;
    assert_eq!(wrong.status(), 403, "a wrong CSRF token");
    let mut cookieless = Client::new(&stack);
    let resp = cookieless
        .post(
            "/dashboard/login",
            &[("csrf", &csrf), ("key", &a.private_key)],
        )
        .await;
    assert_eq!(resp.status(), 403, "a token without its cookie");
    assert!(person.cookies.iter().all(|(k, _)| k != "enconvert_session"));

    // Wrong keys: unknown, public, revoked. The page never repeats the key.
    let (unknown, _) = enconvert_db::keys::generate(enconvert_domain::request::KeyKind::Private);
    for (key, says) in [
        (unknown.as_str(), "Unknown or revoked key"),
        (a.public_key.as_str(), "That is a public key"),
        ("not a key at all", "Unknown or revoked key"),
    ] {
        let resp = person
            .post("/dashboard/login", &[("csrf", &csrf), ("key", key)])
            .await;
        assert_eq!(resp.status(), 401, "{key}");
        assert!(
            resp.headers()
                .get_all(SET_COOKIE)
                .iter()
                .all(|c| !c.to_str().unwrap().starts_with("enconvert_session=")),
            "no session for {key}"
        );
        let page = resp.text().await.unwrap();
        assert!(page.contains(says), "{page}");
        assert!(!page.contains(key), "the key is not echoed");
    }

    // The right key opens a session: an HttpOnly, SameSite=Strict cookie that expires.
    let resp = person.sign_in(&a.private_key).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()[LOCATION], "/dashboard");
    let session_cookie = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("enconvert_session="))
        .unwrap();
    let max_age = format!("Max-Age={}", stack.settings.api.session_ttl.as_secs());
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/dashboard",
        max_age.as_str(),
    ] {
        assert!(session_cookie.contains(attr), "{attr} in {session_cookie}");
    }
    assert!(!session_cookie.contains("Secure"), "plain http in tests");
    let home = person.get("/dashboard", true).await;
    assert_eq!(home.status(), 200);
    let home = home.text().await.unwrap();
    assert!(home.contains(&format!("/dashboard/batches/{a_batch}")));
    assert!(!home.contains(&b_batch), "only this project's batches");
    let token = hidden(&home, "csrf");

    // Another project's batch is not found; this project's is.
    assert_eq!(
        person
            .get(&format!("/dashboard/batches/{a_batch}"), true)
            .await
            .status(),
        200
    );
    for path in [
        format!("/dashboard/batches/{b_batch}"),
        format!("/dashboard/batches/{b_batch}/progress"),
        "/dashboard/batches/not-a-uuid".to_string(),
    ] {
        assert_eq!(person.get(&path, true).await.status(), 404, "{path}");
    }
    let b_jobs = stack
        .get(&b.private_key, &format!("/v1/convert/batch/{b_batch}"))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let b_job = b_jobs["items"][0]["job_id"].as_str().unwrap();
    assert_eq!(
        person
            .get(&format!("/dashboard/batches/{b_batch}/items/{b_job}"), true)
            .await
            .status(),
        404
    );

    // State-changing forms need the session's token: missing or wrong gets 403 and
    // changes nothing; the right one works.
    let mut other = Client::new(&stack);
    assert_eq!(other.sign_in(&b.private_key).await.status(), 303);
    let b_token = hidden(
        &other.get("/dashboard", true).await.text().await.unwrap(),
        "csrf",
    );
    assert_ne!(b_token, token);
    let before = key_count(&stack, a.id).await;
    for form in [
        vec![("kind", "private")],
        vec![("kind", "private"), ("csrf", "")],
        vec![("kind", "private"), ("csrf", "forged")],
        vec![("kind", "private"), ("csrf", b_token.as_str())],
    ] {
        let resp = person.post("/dashboard/settings/keys", &form).await;
        assert_eq!(resp.status(), 403, "{form:?}");
        let page = resp.text().await.unwrap();
        assert!(!page.contains("sk_live_"), "no key made");
    }
    assert_eq!(key_count(&stack, a.id).await, before, "no key was created");
    for path in [
        "/dashboard/settings/webhook-secret".to_string(),
        "/dashboard/settings/notifications".to_string(),
        format!(
            "/dashboard/batches/{a_batch}/deliveries/{}/redeliver",
            uuid::Uuid::nil()
        ),
        "/dashboard/logout".to_string(),
    ] {
        let resp = person
            .post(
                &path,
                &[("csrf", "forged"), ("owner_email", "x@example.com")],
            )
            .await;
        assert_eq!(resp.status(), 403, "{path}");
    }
    let mut conn = stack.db.conn().await.unwrap();
    let owner = enconvert_db::projects::find_project(&mut conn, a.id)
        .await
        .unwrap()
        .unwrap()
        .owner_email;
    drop(conn);
    assert_eq!(owner, "a@example.com", "the forged form changed nothing");
    assert_eq!(
        person.get("/dashboard", true).await.status(),
        200,
        "still signed in"
    );

    let created = person
        .post(
            "/dashboard/settings/keys",
            &[("csrf", &token), ("kind", "public")],
        )
        .await;
    assert_eq!(created.status(), 200);
    let created = created.text().await.unwrap();
    let new_key = created
        .split("<code id=\"new-key\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    assert!(new_key.starts_with("pk_live_"), "{new_key}");
    assert_eq!(key_count(&stack, a.id).await, before + 1);
    let with_new = stack.get(&new_key, "/v1/convert/status/no-such-job").await;
    assert_eq!(
        with_new.status(),
        404,
        "the new key authenticates (401 otherwise)"
    );
    let saved = person
        .post(
            "/dashboard/settings/notifications",
            &[("csrf", &token), ("owner_email", "ops@example.com")],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let mut conn = stack.db.conn().await.unwrap();
    let p = enconvert_db::projects::find_project(&mut conn, a.id)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    assert_eq!(p.owner_email, "ops@example.com");
    assert!(
        !p.default_email_enabled,
        "an unticked switch turns the default email off"
    );

    // Signing out ends the session on the server: the old cookie no longer works.
    let stolen = person.cookies.clone();
    let out = person.post("/dashboard/logout", &[("csrf", &token)]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(
        out.headers()[LOCATION],
        "/dashboard/login?notice=signed-out"
    );
    person.cookies = stolen;
    assert_eq!(person.get("/dashboard", false).await.status(), 401);

    // Revoking the key a session signed in with ends the session.
    assert_eq!(other.get("/dashboard", false).await.status(), 200);
    let mut conn = stack.db.conn().await.unwrap();
    let b_private = enconvert_db::projects::keys_of_project(&mut conn, b.id)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kind == "private")
        .unwrap();
    enconvert_db::projects::revoke_key(&mut conn, b_private.id)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(other.get("/dashboard", false).await.status(), 401);

    // And a session expires.
    let mut again = Client::new(&stack);
    assert_eq!(again.sign_in(&a.private_key).await.status(), 303);
    assert_eq!(again.get("/dashboard", false).await.status(), 200);
    let mut conn = stack.db.conn().await.unwrap();
    diesel::update(enconvert_db::schema::dashboard_sessions::table)
        .filter(enconvert_db::schema::dashboard_sessions::project_id.eq(a.id))
        .set(enconvert_db::schema::dashboard_sessions::expires_at.eq(diesel::dsl::now))
        .execute(&mut conn)
        .await
        .unwrap();
    let pruned = enconvert_db::sessions::prune(&mut conn).await.unwrap();
    drop(conn);
    assert!(pruned >= 1);
    assert_eq!(again.get("/dashboard", false).await.status(), 401);

    stack.stop().await;
}

/// Makes `docs/img/dashboard.png` for the README: a batch page after a small batch with one
/// failing URL and a webhook. Run by `scripts/dashboard-screenshot.sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "writes docs/img/dashboard.png; run by scripts/dashboard-screenshot.sh"]
async fn screenshot_for_the_readme() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    for (path, title) in [
        ("/reports/q3", "Q3 report"),
        ("/reports/q4", "Q4 report"),
        ("/pricing", "Pricing"),
    ] {
        site.route(path, vec![Reply::html(&page(title))]);
    }
    site.route("/old-page", vec![Reply::status(404)]);
    let hooks = HttpPeer::start().await;
    hooks.route("/hooks/enconvert", vec![Reply::status(204)]);
    let project = stack.project("pro", "owner@example.com").await;
    let mut conn = stack.db.conn().await.unwrap();
    diesel::update(enconvert_db::schema::projects::table.find(project.id))
        .set((
            enconvert_db::schema::projects::name.eq("acme-reports"),
            // Webhooks only: the picture's notification log stays short.
            enconvert_db::schema::projects::default_email_enabled.eq(false),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({
                "url": [site.url("/reports/q3"), site.url("/reports/q4"), site.url("/pricing"), site.url("/old-page")],
                "callback_url": hooks.url("/hooks/enconvert"),
            }),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let batch_id = resp.json::<Value>().await.unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    stack
        .wait_batch(&project.private_key, &batch_id, WAIT)
        .await;
    stack
        .wait_deliveries(&project.private_key, &batch_id, 4, WAIT)
        .await;

    let browser = launch(&stack, (1280, 1120));
    let tab = browser.new_tab().unwrap();
    goto(&tab, &format!("{}/dashboard/login", stack.base)).await;
    sign_in(&tab, &project.private_key).await;
    goto(
        &tab,
        &format!("{}/dashboard/batches/{batch_id}", stack.base),
    )
    .await;
    wait_js(
        &tab,
        "document.querySelectorAll('li.attempt').length",
        |v| v == 4,
        WAIT,
    )
    .await;
    let png = on(&tab, |t| {
        t.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap()
    })
    .await;
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/img/dashboard.png");
    std::fs::write(&out, &png).unwrap();
    println!("wrote {} ({} bytes)", out.display(), png.len());
    // The other pages, for a person to look at (not committed).
    for (name, path) in [
        ("item", String::new()),
        ("list", "/dashboard".to_string()),
        ("settings", "/dashboard/settings".to_string()),
    ] {
        if path.is_empty() {
            click(&tab, "table.items tbody tr:first-child a.item").await;
        } else {
            goto(&tab, &format!("{}{path}", stack.base)).await;
        }
        let png = on(&tab, |t| {
            t.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
                .unwrap()
        })
        .await;
        let file = std::env::temp_dir().join(format!("enconvert-dashboard-{name}.png"));
        std::fs::write(&file, &png).unwrap();
        println!("wrote {}", file.display());
    }
    drop(tab);
    drop(browser);
    stack.stop().await;
}

/// The text of `<code id="{id}">` in a page.
fn code(html: &str, id: &str) -> Option<String> {
    let marker = format!("<code id=\"{id}\">");
    let start = html.find(&marker)? + marker.len();
    html[start..].split('<').next().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settings_rotate_the_webhook_secret_and_revoke_keys_and_a_zip_batch_links_its_archive() {
    let stack = Stack::start(StackOptions::default()).await;
    let site = HttpPeer::start().await;
    site.route("/a", vec![Reply::html(&page("Alpha"))]);
    site.route("/b", vec![Reply::html(&page("Bravo"))]);
    let project = stack.project("pro", "owner@example.com").await;
    let mut person = Client::new(&stack);
    assert_eq!(person.sign_in(&project.private_key).await.status(), 303);
    let settings = person
        .get("/dashboard/settings", true)
        .await
        .text()
        .await
        .unwrap();
    let token = hidden(&settings, "csrf");
    assert!(
        !settings.contains("whsec_"),
        "no secret shown unless just made"
    );
    assert!(
        !settings.contains(&project.private_key),
        "keys are listed by prefix only"
    );
    assert!(settings.contains(&format!("<code>{}…</code>", &project.private_key[..12])));

    // Rotation shows the new secret once; it is the one that now signs.
    let rotated = person
        .post("/dashboard/settings/webhook-secret", &[("csrf", &token)])
        .await;
    assert_eq!(rotated.status(), 200);
    let secret = code(&rotated.text().await.unwrap(), "new-secret").unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let mut conn = stack.db.conn().await.unwrap();
    let current = enconvert_db::webhook_secrets::current(&mut conn, project.id)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(current, secret);
    let again = person
        .get("/dashboard/settings", true)
        .await
        .text()
        .await
        .unwrap();
    assert!(!again.contains(&secret), "shown once");

    // Revoking the public key: the API refuses it from then on.
    assert_eq!(
        stack
            .get(&project.public_key, "/v1/convert/status/x")
            .await
            .status(),
        404
    );
    let mut conn = stack.db.conn().await.unwrap();
    let keys = enconvert_db::projects::keys_of_project(&mut conn, project.id)
        .await
        .unwrap();
    drop(conn);
    let public = keys.iter().find(|k| k.kind == "public").unwrap();
    let private = keys.iter().find(|k| k.kind == "private").unwrap();
    let resp = person
        .post(
            &format!("/dashboard/settings/keys/{}/revoke", public.id),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()[LOCATION],
        "/dashboard/settings?notice=revoked"
    );
    assert_eq!(
        stack
            .get(&project.public_key, "/v1/convert/status/x")
            .await
            .status(),
        401
    );
    // Another project's key is not found; the last private key is kept.
    let other = stack.project("pro", "other@example.com").await;
    let mut conn = stack.db.conn().await.unwrap();
    let foreign = enconvert_db::projects::keys_of_project(&mut conn, other.id)
        .await
        .unwrap()[0]
        .id;
    drop(conn);
    let resp = person
        .post(
            &format!("/dashboard/settings/keys/{foreign}/revoke"),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(resp.status(), 404);
    let resp = person
        .post(
            &format!("/dashboard/settings/keys/{}/revoke", private.id),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("last active private key")
    );

    // A ZIP batch: no per-item links, one link to the archive, which is a ZIP.
    let resp = stack
        .post(
            &project.private_key,
            "/v1/convert/url-to-pdf",
            &json!({"url": [site.url("/a"), site.url("/b")], "output_format": true}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let batch_id = resp.json::<Value>().await.unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    stack
        .wait_batch(&project.private_key, &batch_id, WAIT)
        .await;
    let page = person
        .get(&format!("/dashboard/batches/{batch_id}"), true)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("class=\"download").count(), 1, "{page}");
    assert_eq!(page.matches("in the ZIP archive").count(), 2);
    let href = page
        .split("<a class=\"download zip\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let zip = reqwest::get(&href).await.unwrap();
    assert_eq!(zip.status(), 200, "{href}");
    assert!(zip.bytes().await.unwrap().starts_with(b"PK\x03\x04"));

    // Revoking this session's own key (another private key exists now) signs it out.
    let made = person
        .post(
            "/dashboard/settings/keys",
            &[("csrf", &token), ("kind", "private")],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(code(&made, "new-key").unwrap().starts_with("sk_live_"));
    let resp = person
        .post(
            &format!("/dashboard/settings/keys/{}/revoke", private.id),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()[LOCATION], "/dashboard/login");
    assert_eq!(person.get("/dashboard", false).await.status(), 401);

    stack.stop().await;
}
