#![doc = include_str!("../README.md")]
// A test harness: failing loudly is its job.
#![expect(clippy::unwrap_used, reason = "test harness")]

pub mod peers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use enconvert_config::Settings;
use enconvert_db::{Db, keys, projects};
use enconvert_domain::AllowList;
use enconvert_domain::request::KeyKind;
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const RABBIT_API: &str = "http://127.0.0.1:15672/api";
/// How long the helpers wait for a batch: generous, for a loaded machine.
pub const WAIT: Duration = Duration::from_secs(60);

/// A small HTML page whose text carries `token`, to find in the output.
pub fn page(token: &str) -> String {
    format!(
        "<!doctype html><html><head><title>{token}</title></head><body><h1>Invoice {token}</h1><p>Total due: 42 EUR</p></body></html>"
    )
}

/// GETs a URL without a key; returns the status and the body.
pub async fn fetch(url: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

/// Options of a test stack.
#[derive(Clone)]
pub struct StackOptions {
    pub smtp: Option<SocketAddr>,
    pub webhook_timeout: Duration,
    pub render_timeout: Duration,
    pub concurrency: usize,
    pub retention_sweep: Duration,
    pub sync_timeout: Duration,
    /// `s3://bucket`: store files there instead of a local directory.
    pub storage_url: Option<String>,
    pub storage_options: Vec<(String, String)>,
    /// How long a website submit waits for discovery.
    pub discovery_wait: Duration,
    /// The time budget of one website discovery.
    pub discovery_budget: Duration,
    /// The notifier's retry schedule; `None`: the configured one.
    pub retry_schedule: Option<Vec<Duration>>,
    /// Start the api, worker and notifier (false: only the database, migrated, and the
    /// vhost, for tests that start their own processes).
    pub processes: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            smtp: None,
            webhook_timeout: Duration::from_secs(5),
            render_timeout: Duration::from_secs(30),
            concurrency: 2,
            retention_sweep: Duration::from_secs(300),
            sync_timeout: Duration::from_secs(60),
            storage_url: None,
            storage_options: Vec::new(),
            discovery_wait: Duration::from_secs(20),
            discovery_budget: Duration::from_secs(60),
            retry_schedule: None,
            processes: true,
        }
    }
}

/// The three processes running against a private database and vhost.
pub struct Stack {
    pub name: String,
    pub base: String,
    /// Base URLs of the health and metrics listeners of the api, worker and notifier.
    pub api_ops: String,
    pub worker_ops: String,
    pub notifier_ops: String,
    pub db: Db,
    pub settings: Settings,
    pub http: reqwest::Client,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A project with its keys.
pub struct TestProject {
    pub id: Uuid,
    pub private_key: String,
    pub public_key: String,
}

async fn create_vhost(name: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    http.put(format!("{RABBIT_API}/vhosts/{name}"))
        .basic_auth("guest", Some("guest"))
        .json(&serde_json::json!({"default_queue_type": "quorum"}))
        .send()
        .await?
        .error_for_status()?;
    http.put(format!("{RABBIT_API}/permissions/{name}/guest"))
        .basic_auth("guest", Some("guest"))
        .json(&serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

impl Stack {
    pub async fn start(opts: StackOptions) -> Stack {
        let name = format!("enc_t_{}", &Uuid::new_v4().simple().to_string()[..12]);
        let mut admin = AsyncPgConnection::establish(PG_ADMIN)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        create_vhost(&name)
            .await
            .expect("RabbitMQ management API on 127.0.0.1:15672");

        let dir: PathBuf = std::env::temp_dir().join(&name);
        let mut settings = Settings::from_env().unwrap();
        settings.database_url =
            SecretString::from(format!("postgres://postgres@127.0.0.1:5432/{name}"));
        settings.amqp_url = SecretString::from(format!("amqp://guest:guest@127.0.0.1:5672/{name}"));
        settings.allow_private = AllowList::parse("127.0.0.1").unwrap();
        settings.storage_dir = dir.join("files");
        settings.storage_url = opts.storage_url.clone();
        settings.storage_options = opts.storage_options.clone();
        settings.db_pool_size = 8;
        settings.api.addr = "127.0.0.1:0".parse().unwrap();
        settings.api.ops_addr = Some("127.0.0.1:0".parse().unwrap());
        settings.worker.ops_addr = Some("127.0.0.1:0".parse().unwrap());
        settings.notifier.ops_addr = Some("127.0.0.1:0".parse().unwrap());
        settings.api.sync_timeout = opts.sync_timeout;
        settings.api.discovery_wait = opts.discovery_wait;
        settings.worker.discovery_budget = opts.discovery_budget;
        settings.worker.render_timeout = opts.render_timeout;
        settings.worker.concurrency = opts.concurrency;
        settings.worker.retention_sweep = opts.retention_sweep;
        settings.notifier.mail_dir = dir.join("mail");
        settings.notifier.smtp_url = opts.smtp.map(|a| SecretString::from(format!("smtp://{a}")));
        settings.notifier.webhook_timeout = opts.webhook_timeout;
        if let Some(schedule) = opts.retry_schedule {
            settings.notifier.retry_schedule = schedule;
        }

        let cancel = CancellationToken::new();
        let db = Db::new(&format!("postgres://postgres@127.0.0.1:5432/{name}"), 4).unwrap();
        if !opts.processes {
            enconvert_db::migrate(
                &format!("postgres://postgres@127.0.0.1:5432/{name}"),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
            return Stack {
                name,
                base: String::new(),
                api_ops: String::new(),
                worker_ops: String::new(),
                notifier_ops: String::new(),
                db,
                settings,
                http: reqwest::Client::new(),
                cancel,
                tasks: Vec::new(),
            };
        }
        let api = enconvert_api::start(&settings, cancel.clone())
            .await
            .unwrap();
        let base = format!("http://{}", api.addr);
        // Completion emails link to this api's dashboard (the configured default is
        // ENCONVERT_API_ADDR's, which a test's api does not listen on).
        if settings.api.public_url.is_none() {
            settings.notifier.dashboard_url = format!("{base}/dashboard");
        }
        let worker = enconvert_worker::start(&settings, cancel.clone())
            .await
            .unwrap();
        let notifier = enconvert_notifier::start(&settings, cancel.clone())
            .await
            .unwrap();
        let ops = |addr: Option<SocketAddr>| format!("http://{}", addr.unwrap());
        let (api_ops, worker_ops, notifier_ops) = (
            ops(api.ops_addr),
            ops(worker.ops_addr),
            ops(notifier.ops_addr),
        );
        let tasks = vec![
            tokio::spawn(async move {
                let _ = api.done.await;
            }),
            tokio::spawn(async move {
                let _ = worker.done.await;
            }),
            tokio::spawn(async move {
                let _ = notifier.done.await;
            }),
        ];
        Stack {
            name,
            base,
            api_ops,
            worker_ops,
            notifier_ops,
            db,
            settings,
            http: reqwest::Client::new(),
            cancel,
            tasks,
        }
    }

    /// A project on `plan` with a private and a public key.
    pub async fn project(&self, plan: &str, owner_email: &str) -> TestProject {
        let mut conn = self.db.conn().await.unwrap();
        let p = projects::create_project(
            &mut conn,
            &format!("p-{}", Uuid::new_v4()),
            owner_email,
            plan,
        )
        .await
        .unwrap();
        let (private_key, h1) = keys::generate(KeyKind::Private);
        let (public_key, h2) = keys::generate(KeyKind::Public);
        projects::insert_key(
            &mut conn,
            p.id,
            "private",
            &keys::display_prefix(&private_key),
            h1,
        )
        .await
        .unwrap();
        projects::insert_key(
            &mut conn,
            p.id,
            "public",
            &keys::display_prefix(&public_key),
            h2,
        )
        .await
        .unwrap();
        TestProject {
            id: p.id,
            private_key,
            public_key,
        }
    }

    pub async fn post(&self, key: &str, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("X-API-Key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap()
    }

    /// Submits an async request (expects `202`) and returns its batch id.
    pub async fn submit(&self, key: &str, path: &str, body: &Value) -> String {
        let resp = self.post(key, path, body).await;
        assert_eq!(resp.status(), 202, "{body}");
        resp.json::<Value>().await.unwrap()["batch_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Submits an async request and polls its batch until it is final.
    pub async fn submit_and_wait(&self, key: &str, path: &str, body: &Value) -> Value {
        let batch_id = self.submit(key, path, body).await;
        self.wait_batch(key, &batch_id, WAIT).await
    }

    /// Polls a batch until it is final; panics after `within`.
    pub async fn wait_batch(&self, key: &str, batch_id: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let body: Value = self
                .get(key, &format!("/v1/convert/batch/{batch_id}"))
                .await
                .json()
                .await
                .unwrap();
            if body["status"] != "processing" {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "batch {batch_id} still processing: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls a batch until none of its items is in progress (a ZIP batch then still waits
    /// for its archive); panics after `within`.
    pub async fn wait_items(&self, key: &str, batch_id: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let body: Value = self
                .get(key, &format!("/v1/convert/batch/{batch_id}"))
                .await
                .json()
                .await
                .unwrap();
            if body["in_progress"] == 0 {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "batch {batch_id} still has items in progress: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes messages to the outbox and waits until the relay has published them.
    pub async fn publish(&self, messages: &[enconvert_db::models::OutboxMessage]) {
        use diesel::QueryDsl;
        let mut conn = self.db.conn().await.unwrap();
        enconvert_db::outbox::insert(&mut conn, messages)
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left: i64 = enconvert_db::schema::outbox::table
                .count()
                .get_result(&mut conn)
                .await
                .unwrap();
            if left == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the outbox was not drained"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Does what the ZIP archive builder will do once it lands: records the batch's archive
    /// as stored (or failed) and announces `batch.completed` through the outbox. Returns the
    /// archive's key, file name and size.
    pub async fn complete_zip_batch(&self, batch_id: Uuid, stored: bool) -> (String, String, i64) {
        use diesel::{ExpressionMethods, QueryDsl};
        use enconvert_db::schema::batches;
        let mut conn = self.db.conn().await.unwrap();
        let batch = enconvert_db::batches::get(&mut conn, batch_id)
            .await
            .unwrap()
            .unwrap();
        let filename = "batch_20260405_123456789.zip".to_string();
        let key = format!(
            "dev/files/{}/{}/{filename}",
            batch.project_id, batch.endpoint
        );
        let size = 456_789_i64;
        diesel::update(batches::table.find(batch_id))
            .set((
                batches::archive_status.eq(if stored { "stored" } else { "failed" }),
                batches::archive_key.eq(stored.then(|| key.clone())),
                batches::archive_filename.eq(stored.then(|| filename.clone())),
                batches::archive_size.eq(stored.then_some(size)),
                batches::completed_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await
            .unwrap();
        let batch = enconvert_db::batches::get(&mut conn, batch_id)
            .await
            .unwrap()
            .unwrap();
        drop(conn);
        let event =
            enconvert_queue::messages::batch_completed(&enconvert_domain::events::BatchCompleted {
                batch_id,
                project_id: batch.project_id,
                status: batch.status(),
                output_mode: batch.output_mode(),
            });
        self.publish(&[event]).await;
        (key, filename, size)
    }

    /// The delivery log of a batch.
    pub async fn deliveries(&self, key: &str, batch_id: &str) -> Value {
        let resp = self
            .get(key, &format!("/v1/convert/batch/{batch_id}/deliveries"))
            .await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// Polls the delivery log until every delivery is final (sent or failed) and there are
    /// `n` of them; panics after `within`.
    pub async fn wait_deliveries(
        &self,
        key: &str,
        batch_id: &str,
        n: usize,
        within: Duration,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let log = self.deliveries(key, batch_id).await;
            let list = log["deliveries"].as_array().cloned().unwrap_or_default();
            if list.len() >= n && list.iter().all(|d| d["status"] != "pending") {
                return list;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "deliveries of {batch_id} not final: {log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Names of the RabbitMQ connections of this stack's vhost (management API).
    pub async fn amqp_connections(&self) -> Vec<String> {
        let list: Value = reqwest::Client::new()
            .get(format!("{RABBIT_API}/vhosts/{}/connections", self.name))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Closes every RabbitMQ connection of this stack's vhost; returns how many.
    pub async fn close_amqp_connections(&self) -> usize {
        let names = self.amqp_connections().await;
        for name in &names {
            let encoded: String = url_encode(name);
            let _ = reqwest::Client::new()
                .delete(format!("{RABBIT_API}/connections/{encoded}"))
                .basic_auth("guest", Some("guest"))
                .send()
                .await;
        }
        names.len()
    }

    /// Stops the processes, then drops the database and vhost.
    pub async fn stop(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(40), t).await;
        }
        drop(self.db);
        if let Ok(mut admin) = AsyncPgConnection::establish(PG_ADMIN).await {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await;
        }
        let _ = reqwest::Client::new()
            .delete(format!("{RABBIT_API}/vhosts/{}", self.name))
            .basic_auth("guest", Some("guest"))
            .send()
            .await;
        let _ = std::fs::remove_dir_all(std::env::temp_dir().join(&self.name));
    }
}

/// A sample's value in Prometheus text: the line `name{labels} value` whose labels contain
/// every one of `labels` (`("outcome", "success")`); the sum when several lines match, 0 when
/// none does (a counter not incremented yet is absent).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let found = labels
                .iter()
                .all(|(k, v)| rest.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
            found.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// The text of a PDF, through poppler's `pdftotext`.
pub fn pdf_text(pdf: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("enc-{}.pdf", Uuid::new_v4()));
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed by scripts/ensure-deps.sh");
    let _ = std::fs::remove_file(&path);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Page count and the first page's size in points, through poppler's `pdfinfo`.
pub fn pdf_info(pdf: &[u8]) -> (u32, f64, f64) {
    let path = std::env::temp_dir().join(format!("enc-{}.pdf", Uuid::new_v4()));
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdfinfo")
        .arg(&path)
        .output()
        .expect("pdfinfo");
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut pages = 0;
    let (mut w, mut h) = (0.0, 0.0);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("Pages:") {
            pages = v.trim().parse().unwrap_or(0);
        }
        if let Some(v) = line.strip_prefix("Page size:") {
            let parts: Vec<&str> = v.split_whitespace().collect();
            w = <[&str]>::first(&parts)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            h = parts.get(2).and_then(|s| s.parse().ok()).unwrap_or(0.0);
        }
    }
    (pages, w, h)
}

/// Verifies a webhook's Standard Webhooks signature with an independent implementation:
/// Python's `standardwebhooks` package when it is installed (scripts/ensure-deps.sh installs
/// it), else a few lines of Python's `hmac`. `Ok` names the implementation that accepted it.
pub fn verify_standard_webhook(
    secret: &str,
    id: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
) -> Result<&'static str, String> {
    use std::io::Write;
    const SCRIPT: &str = r#"
import sys
secret, msg_id, ts, sig = sys.argv[1:5]
data = sys.stdin.buffer.read()
try:
    from standardwebhooks.webhooks import Webhook
except ImportError:
    import base64, hashlib, hmac
    key = base64.b64decode(secret[len("whsec_"):])
    expected = base64.b64encode(hmac.new(key, msg_id.encode() + b"." + ts.encode() + b"." + data, hashlib.sha256).digest()).decode()
    ok = any(s.startswith("v1,") and hmac.compare_digest(s[3:], expected) for s in sig.split(" "))
    print("python-hmac" if ok else "no matching signature")
    sys.exit(0 if ok else 1)
Webhook(secret).verify(data, {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig})
print("standardwebhooks")
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", SCRIPT, secret, id, timestamp, signature])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(if said == "standardwebhooks" {
            "standardwebhooks"
        } else {
            "python-hmac"
        })
    } else {
        Err(format!(
            "{said} {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
