#![doc = include_str!("../README.md")]
// A test harness: failing loudly is its job.
#![expect(clippy::unwrap_used, reason = "test harness")]

pub mod site;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use enconvert_db::{Db, keys, projects};
use enconvert_e2e::peers::{HttpPeer, Reply};
use serde_json::{Value, json};
use uuid::Uuid;

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn must(what: &str, out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The newest PostgreSQL's `bin` directory under /usr/lib/postgresql.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql (scripts/ensure-deps.sh)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

/// A private PostgreSQL cluster in a temporary directory, on its own loopback port.
pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    root: bool,
}

impl Postgres {
    /// `initdb`, then `pg_ctl start` (blocking).
    pub fn start(parent: &Path) -> Postgres {
        let dir = parent.join("pg");
        std::fs::create_dir_all(&dir).unwrap();
        let root = is_root();
        if root {
            // PostgreSQL refuses to run as root.
            must(
                "chown",
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&dir)
                    .output(),
            );
        }
        let pg = Postgres {
            port: free_port(),
            dir,
            bin: pg_bin(),
            root,
        };
        must(
            "initdb",
            pg.cmd("initdb")
                .arg("-D")
                .arg(pg.dir.join("data"))
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
                .output(),
        );
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nmax_connections = 100\n",
            pg.port,
            pg.dir.display()
        );
        let path = pg.dir.join("data/postgresql.conf");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&conf);
        std::fs::write(&path, text).unwrap();
        pg.resume();
        must(
            "createdb",
            pg.cmd("createdb")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &pg.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .arg("enconvert")
                .output(),
        );
        pg
    }

    fn cmd(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/enconvert", self.port)
    }

    /// Starts (again) the stopped cluster and waits until it accepts connections.
    pub fn resume(&self) {
        must(
            "pg_ctl start",
            self.cmd("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .args(["-w", "-t", "120", "start"])
                .stdout(Stdio::null())
                .output(),
        );
    }

    /// Stops the cluster (`-m fast`: open sessions are cut, as in an outage).
    pub fn stop(&self) {
        must(
            "pg_ctl stop",
            self.cmd("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "fast", "-w", "-t", "120", "stop"])
                .output(),
        );
    }
}

impl Postgres {
    /// Stops the cluster at once (idempotent).
    pub fn shutdown(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A private RabbitMQ node: its own node name, AMQP and distribution ports, data and logs.
pub struct Rabbit {
    pub port: u16,
    node: String,
    dir: PathBuf,
    dist_port: u16,
    child: Option<Child>,
}

impl Rabbit {
    /// Starts the node and waits until it has booted (blocking).
    pub fn start(parent: &Path) -> Rabbit {
        let dir = parent.join("rabbit");
        std::fs::create_dir_all(&dir).unwrap();
        // No plugins (the system's enabled_plugins would bind the management port) and no
        // system env file (it names the system node).
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(dir.join("rabbitmq-env.conf"), "").unwrap();
        std::fs::write(dir.join("rabbitmq.conf"), "").unwrap();
        let mut rabbit = Rabbit {
            port: free_port(),
            node: format!(
                "enc_faults_{}@localhost",
                &Uuid::new_v4().simple().to_string()[..8]
            ),
            dir,
            dist_port: free_port(),
            child: None,
        };
        rabbit.resume();
        rabbit
    }

    fn env(&self, c: &mut Command) {
        let d = &self.dir;
        c.env("HOME", d)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONF_ENV_FILE", d.join("rabbitmq-env.conf"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", d.join("plugins-expand"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            );
    }

    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `rabbitmqctl -n <node> args...`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut c = Command::new("/usr/lib/rabbitmq/bin/rabbitmqctl");
        self.env(&mut c);
        c.args(["-q", "-n", &self.node]).args(args);
        c.output().expect("rabbitmqctl")
    }

    /// Starts the node (again) with its data and waits until it has booted.
    pub fn resume(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("server.out"))
            .unwrap();
        let mut c = Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        self.env(&mut c);
        c.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        self.child = Some(c.spawn().expect("rabbitmq-server (scripts/ensure-deps.sh)"));
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if self
                .ctl(&["await_startup", "--timeout", "60"])
                .status
                .success()
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "rabbitmq-server exited with {status}; see {}",
                    self.dir.join("server.out").display()
                );
            }
            assert!(Instant::now() < deadline, "RabbitMQ node did not start");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Stops the node in order (`rabbitmqctl stop`) and waits for its process.
    pub fn stop(&mut self) {
        must("rabbitmqctl stop", Ok(self.ctl(&["stop"])));
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Messages ready + unacknowledged in `queue`.
    pub fn depth(&self, queue: &str) -> u64 {
        let out = must(
            "rabbitmqctl list_queues",
            Ok(self.ctl(&["list_queues", "name", "messages"])),
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                (parts.next() == Some(queue)).then(|| parts.next()?.parse().ok())?
            })
            .next()
            .unwrap_or(0)
    }

    /// Waits up to `within` for `queues` to hold no message (ready or unacknowledged);
    /// whether they did.
    pub async fn drained(&self, queues: &[&str], within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if queues.iter().all(|q| self.depth(q) == 0) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Every queue with its ready and unacknowledged messages and its consumers, as
    /// `rabbitmqctl list_queues` prints them (for a failing test's message).
    pub fn queues(&self) -> String {
        let out = self.ctl(&[
            "list_queues",
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "consumers",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Consumers on `queue`.
    pub fn consumers(&self, queue: &str) -> u64 {
        let out = self.ctl(&["list_queues", "name", "consumers"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                (parts.next() == Some(queue)).then(|| parts.next()?.parse().ok())?
            })
            .next()
            .unwrap_or(0)
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Rabbit {
    /// Kills the node at once (idempotent).
    pub fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                .output();
            let _ = child.wait();
        }
    }
}

/// One of the service binaries, running as an OS process in its own process group (so that
/// its Chromium goes with it when the group is killed).
pub struct Proc {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    exited: Option<ExitStatus>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `KILL`, ...) to the process itself.
    pub fn signal(&self, signal: &str) {
        must(
            "kill",
            Command::new("kill")
                .args(["-s", signal, &self.pid().to_string()])
                .output(),
        );
    }

    /// SIGKILL to the whole process group and to every descendant (Chromium's helpers may
    /// leave the group), then reaps the process.
    pub fn kill_group(&mut self) {
        let tree: Vec<String> = descendants(self.pid())
            .into_iter()
            .map(|(pid, _, _)| pid.to_string())
            .collect();
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.pid())])
            .args(&tree)
            .output();
        self.exited = self.child.wait().ok();
    }

    pub fn alive(&mut self) -> bool {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited.is_none()
    }

    /// Waits up to `within` for the process to exit; its status, or `None` if it did not.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if !self.alive() {
                return self.exited;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited.is_none() {
            self.kill_group();
        }
    }
}

/// Direct children of `pid` (from /proc), with their state letter and command line.
pub fn children(pid: u32) -> Vec<(u32, char, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.trim().to_string()) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: u32 = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        if ppid == pid {
            let cmdline = std::fs::read(format!("/proc/{child}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            out.push((child, state, cmdline));
        }
    }
    out
}

/// All descendants of `pid`.
pub fn descendants(pid: u32) -> Vec<(u32, char, String)> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children(p) {
            todo.push(c.0);
            out.push(c);
        }
    }
    out
}

/// Knobs of a fault suite.
#[derive(Clone)]
pub struct Options {
    pub render_timeout_secs: u64,
    pub concurrency: usize,
    pub delivery_limit: u32,
    /// Extra environment for every process.
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            render_timeout_secs: 20,
            concurrency: 2,
            delivery_limit: 5,
            env: Vec::new(),
        }
    }
}

/// Jobs submitted with known ids, and the submits that were refused.
#[derive(Default, Debug)]
pub struct Ledger {
    pub prefix: String,
    pub accepted: Vec<String>,
    /// `(id, status)` of submits not answered `202`.
    pub refused: Vec<(String, u16)>,
}

impl Ledger {
    pub fn new(prefix: &str) -> Ledger {
        Ledger {
            prefix: prefix.to_string(),
            ..Ledger::default()
        }
    }
}

/// The answer to one submit.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub id: String,
    /// 0: no answer (the connection was cut).
    pub status: u16,
    pub retry_after: Option<String>,
    pub took: Duration,
}

/// What the ledger counted once the system settled.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub accepted: usize,
    pub refused: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Ids without exactly one final state, a stored file for a success, or their webhook
    /// and email.
    pub lost: Vec<String>,
    /// Ids with more than one job row, webhook or email.
    pub duplicated: Vec<String>,
    pub webhooks: usize,
    pub emails: usize,
    /// Ids whose job rows are absent although they were refused (must stay absent).
    pub refused_but_present: Vec<String>,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accepted {} refused {} succeeded {} failed {} webhooks {} emails {} lost {} duplicated {}",
            self.accepted,
            self.refused,
            self.succeeded,
            self.failed,
            self.webhooks,
            self.emails,
            self.lost.len(),
            self.duplicated.len()
        )
    }
}

/// Private servers, the three binaries and the peers of one fault test.
pub struct Faults {
    pub dir: PathBuf,
    pub pg: Postgres,
    pub rabbit: Rabbit,
    pub env: BTreeMap<String, String>,
    pub base: String,
    pub http: reqwest::Client,
    pub db: Db,
    /// The web site being converted.
    pub site: HttpPeer,
    /// The webhook receiver.
    pub hooks: HttpPeer,
    pub project_id: Uuid,
    pub key: String,
    pub api: Option<Proc>,
    pub workers: Vec<Proc>,
    pub notifier: Option<Proc>,
    spawned: usize,
}

fn bin_dir() -> PathBuf {
    // target/debug/deps/<test> -> target/debug
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap()
}

impl Faults {
    /// Starts PostgreSQL and RabbitMQ, migrates, makes a `pro` project, then the api, one
    /// worker and the notifier.
    pub async fn start(opts: Options) -> Faults {
        let mut faults = Faults::servers(opts).await;
        faults.start_api(&[]).await;
        faults.start_worker(&[]).await;
        faults.start_notifier(&[]);
        faults
    }

    /// Only the servers, the database and the project; no process yet.
    pub async fn servers(opts: Options) -> Faults {
        let dir = std::env::temp_dir().join(format!(
            "enc-faults-{}",
            &Uuid::new_v4().simple().to_string()[..10]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (d1, d2) = (dir.clone(), dir.clone());
        let pg = tokio::task::spawn_blocking(move || Postgres::start(&d1));
        let rabbit = tokio::task::spawn_blocking(move || Rabbit::start(&d2));
        let (pg, rabbit) = (pg.await.unwrap(), rabbit.await.unwrap());
        enconvert_db::migrate(&pg.url(), Duration::from_secs(60))
            .await
            .unwrap();
        let db = Db::new(&pg.url(), 4).unwrap();
        let (project_id, key) = {
            let mut conn = db.conn().await.unwrap();
            let p = projects::create_project(&mut conn, "faults", "owner@example.com", "pro")
                .await
                .unwrap();
            let (key, hash) = keys::generate(enconvert_domain::request::KeyKind::Private);
            projects::insert_key(
                &mut conn,
                p.id,
                "private",
                &keys::display_prefix(&key),
                hash,
            )
            .await
            .unwrap();
            (p.id, key)
        };
        let site = HttpPeer::start().await;
        let hooks = HttpPeer::start().await;
        hooks.route("/hook", vec![Reply::status(200)]);
        let api_port = free_port();
        let mut env = BTreeMap::new();
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        for (k, v) in [
            ("PATH", path),
            ("HOME", dir.display().to_string()),
            // Chromium's profile directory goes under the test's directory, so that whatever
            // outlives its worker is found by the directory's name (see `Drop for Faults`).
            ("TMPDIR", dir.display().to_string()),
            ("DATABASE_URL", pg.url()),
            ("AMQP_URL", rabbit.amqp_url()),
            ("RUST_LOG", "info,headless_chrome=warn".into()),
            ("ENCONVERT_API_ADDR", format!("127.0.0.1:{api_port}")),
            ("ENCONVERT_ALLOW_PRIVATE_TARGETS", "127.0.0.1".into()),
            // Several suites run at once: no fixed health/metrics ports.
            ("ENCONVERT_API_OPS_ADDR", "off".into()),
            ("ENCONVERT_WORKER_OPS_ADDR", "off".into()),
            ("ENCONVERT_NOTIFIER_OPS_ADDR", "off".into()),
            (
                "ENCONVERT_SIGNING_SECRET",
                "fault-suite-signing-secret".into(),
            ),
            (
                "ENCONVERT_STORAGE_DIR",
                dir.join("files").display().to_string(),
            ),
            ("ENCONVERT_MAIL_DIR", dir.join("mail").display().to_string()),
            ("ENCONVERT_DB_POOL_SIZE", "5".into()),
            ("ENCONVERT_WORKER_CONCURRENCY", opts.concurrency.to_string()),
            (
                "ENCONVERT_RENDER_TIMEOUT_SECS",
                opts.render_timeout_secs.to_string(),
            ),
            ("ENCONVERT_DELIVERY_LIMIT", opts.delivery_limit.to_string()),
            ("ENCONVERT_WEBHOOK_TIMEOUT_SECS", "10".into()),
            ("ENCONVERT_WEBHOOK_RETRY_SCHEDULE", "1,2,4".into()),
            ("ENCONVERT_SYNC_TIMEOUT_SECS", "60".into()),
        ] {
            env.insert(k.to_string(), v);
        }
        if let Ok(chromium) = std::env::var("ENCONVERT_CHROMIUM_PATH") {
            env.insert("ENCONVERT_CHROMIUM_PATH".into(), chromium);
        }
        for (k, v) in opts.env {
            env.insert(k, v);
        }
        Faults {
            base: format!("http://127.0.0.1:{api_port}"),
            dir,
            pg,
            rabbit,
            env,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            db,
            site,
            hooks,
            project_id,
            key,
            api: None,
            workers: Vec::new(),
            notifier: None,
            spawned: 0,
        }
    }

    /// Starts `enconvert-<bin>` with the suite's environment plus `extra`.
    pub fn spawn(&mut self, bin: &str, extra: &[(&str, &str)]) -> Proc {
        let path = bin_dir().join(format!("enconvert-{bin}"));
        assert!(
            path.exists(),
            "{} is missing: build the binaries first (`make test-faults` does)",
            path.display()
        );
        self.spawned += 1;
        let log = self.dir.join(format!("{bin}-{}.log", self.spawned));
        let file = File::create(&log).unwrap();
        let mut c = Command::new(path);
        c.env_clear()
            .envs(&self.env)
            .envs(extra.iter().copied())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0);
        Proc {
            name: bin.to_string(),
            log,
            child: c.spawn().unwrap(),
            exited: None,
        }
    }

    /// Starts an api and waits until it answers `/healthz`.
    pub async fn start_api(&mut self, extra: &[(&str, &str)]) {
        let mut api = self.spawn("api", extra);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = self.http.get(format!("{}/healthz", self.base)).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(api.alive(), "the api exited: {}", api.log_text());
            assert!(Instant::now() < deadline, "the api did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.api = Some(api);
    }

    /// Starts a worker and waits until it consumes `render.batch`.
    pub async fn start_worker(&mut self, extra: &[(&str, &str)]) {
        let mut worker = self.spawn("worker", extra);
        // Consumer tags are `worker@host:pid#queue`.
        let tag = format!(":{}#render.batch", worker.pid());
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let out = self.rabbit.ctl(&["list_consumers", "consumer_tag"]);
            if String::from_utf8_lossy(&out.stdout).contains(&tag) {
                break;
            }
            assert!(worker.alive(), "the worker exited: {}", worker.log_text());
            assert!(
                Instant::now() < deadline,
                "the worker did not start consuming"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        self.workers.push(worker);
    }

    /// Starts a worker without waiting for it (it may die at once, on purpose).
    pub fn spawn_worker(&mut self, extra: &[(&str, &str)]) {
        let worker = self.spawn("worker", extra);
        self.workers.push(worker);
    }

    pub fn start_notifier(&mut self, extra: &[(&str, &str)]) {
        let notifier = self.spawn("notifier", extra);
        self.notifier = Some(notifier);
    }

    /// Asserts that the api, every worker and the notifier still run (nothing was restarted).
    pub fn assert_all_alive(&mut self) {
        let mut procs: Vec<&mut Proc> = self.workers.iter_mut().collect();
        procs.extend(self.api.as_mut());
        procs.extend(self.notifier.as_mut());
        for p in procs {
            assert!(
                p.alive(),
                "{} (pid {}) exited: {}",
                p.name,
                p.pid(),
                p.log_text()
            );
        }
    }

    /// A page on the site that answers after `delay`.
    pub fn page(&self, path: &str, delay: Duration) -> String {
        self.site.route(
            path,
            vec![
                Reply::html(&format!(
                    "<!doctype html><title>{path}</title><h1>Page {path}</h1>"
                ))
                .with_delay(delay),
            ],
        );
        self.site.url(path)
    }

    /// Submits `url` as an async job with the next id of `ledger`, a webhook and the owner's
    /// email; records whether it was accepted. Returns the status (0: no answer).
    pub async fn submit(&self, ledger: &mut Ledger, url: &str) -> u16 {
        self.submit_full(ledger, url).await.status
    }

    /// [`Faults::submit`] with the answer's `Retry-After` and how long it took.
    pub async fn submit_full(&self, ledger: &mut Ledger, url: &str) -> Submitted {
        let started = Instant::now();
        let id = format!(
            "{}-{}",
            ledger.prefix,
            ledger.accepted.len() + ledger.refused.len()
        );
        let resp = self
            .http
            .post(format!("{}/v1/convert/url-to-pdf", self.base))
            .header("X-API-Key", &self.key)
            .json(&json!({
                "url": url,
                "async_mode": true,
                "job_id": id,
                "callback_url": self.hooks.url("/hook"),
            }))
            .send()
            .await;
        let (status, retry_after) = match resp {
            Ok(r) => (
                r.status().as_u16(),
                r.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            ),
            Err(_) => (0, None),
        };
        if status == 202 {
            ledger.accepted.push(id.clone());
        } else {
            ledger.refused.push((id.clone(), status));
        }
        Submitted {
            id,
            status,
            retry_after,
            took: started.elapsed(),
        }
    }

    /// The batch status the api answers for `batch_id`.
    pub async fn batch(&self, batch_id: &str) -> Value {
        self.http
            .get(format!("{}/v1/convert/batch/{batch_id}", self.base))
            .header("X-API-Key", &self.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls `batch_id` until it is no longer `processing` (within the settle time), starting
    /// the worker again with `extra` whenever it died, as a supervisor would. The final batch
    /// and the number of restarts.
    pub async fn batch_through_crashes(
        &mut self,
        batch_id: &str,
        extra: &[(&str, &str)],
        within: Duration,
    ) -> (Value, u32) {
        let deadline = Instant::now() + within;
        let mut restarts = 0;
        loop {
            let b = self.batch(batch_id).await;
            if b["status"] != "processing" {
                return (b, restarts);
            }
            assert!(
                Instant::now() < deadline,
                "the batch is still processing after {restarts} worker crashes: {b}"
            );
            if !self.workers[0].alive() {
                self.workers.clear();
                self.spawn_worker(extra);
                restarts += 1;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Jobs of the project by status.
    pub async fn job_states(&self) -> BTreeMap<String, String> {
        use enconvert_db::schema::jobs;
        let mut conn = self.db.conn().await.unwrap();
        let rows: Vec<(Option<String>, String)> = jobs::table
            .filter(jobs::project_id.eq(self.project_id))
            .select((jobs::client_job_id, jobs::status))
            .load(&mut conn)
            .await
            .unwrap();
        rows.into_iter()
            .map(|(id, s)| (id.unwrap_or_default(), s))
            .collect()
    }

    /// Waits until some job is `rendering`.
    pub async fn wait_rendering(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let rendering = self
                .job_states()
                .await
                .values()
                .filter(|s| *s == "rendering")
                .count();
            if rendering >= n {
                return;
            }
            assert!(Instant::now() < deadline, "no job started rendering");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn emails(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.dir.join("mail")) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }

    /// Counts the ledger now.
    pub async fn count(&self, ledger: &Ledger) -> Figures {
        use enconvert_db::schema::jobs;
        let mut conn = self.db.conn().await.unwrap();
        let all: Vec<String> = ledger
            .accepted
            .iter()
            .chain(ledger.refused.iter().map(|(id, _)| id))
            .cloned()
            .collect();
        let rows: Vec<(Option<String>, String, Option<String>)> = jobs::table
            .filter(jobs::project_id.eq(self.project_id))
            .filter(jobs::client_job_id.eq_any(&all))
            .select((jobs::client_job_id, jobs::status, jobs::object_key))
            .load(&mut conn)
            .await
            .unwrap();
        let hooks: Vec<Value> = self
            .hooks
            .seen("/hook")
            .iter()
            .filter_map(|s| serde_json::from_slice(&s.body).ok())
            .collect();
        let emails = self.emails();
        let storage = PathBuf::from(&self.env["ENCONVERT_STORAGE_DIR"]);
        let mut f = Figures {
            accepted: ledger.accepted.len(),
            refused: ledger.refused.len(),
            ..Figures::default()
        };
        for id in &ledger.accepted {
            let mine: Vec<_> = rows
                .iter()
                .filter(|r| r.0.as_deref() == Some(id.as_str()))
                .collect();
            let webhooks = hooks.iter().filter(|h| h["job_id"] == id.as_str()).count();
            let needle_ok = format!("job {id} succeeded");
            let needle_failed = format!("job {id} failed");
            let mails = emails
                .iter()
                .filter(|m| m.contains(&needle_ok) || m.contains(&needle_failed))
                .count();
            f.webhooks += webhooks;
            f.emails += mails;
            if mine.len() > 1 || webhooks > 1 || mails > 1 {
                f.duplicated.push(id.clone());
            }
            let Some((_, status, key)) = <[_]>::first(&mine) else {
                f.lost.push(id.clone());
                continue;
            };
            let stored = key
                .as_ref()
                .is_some_and(|k| storage.join(k).metadata().is_ok_and(|m| m.len() > 0));
            let complete = match status.as_str() {
                "success" => {
                    f.succeeded += 1;
                    stored
                }
                "failed" => {
                    f.failed += 1;
                    true
                }
                _ => false,
            };
            if !complete || webhooks == 0 || mails == 0 {
                f.lost.push(id.clone());
            }
        }
        for (id, _) in &ledger.refused {
            if rows.iter().any(|r| r.0.as_deref() == Some(id.as_str())) {
                f.refused_but_present.push(id.clone());
            }
        }
        f
    }

    /// Waits until every accepted id is complete (or `within` passes), then a little more for
    /// late duplicates; prints and returns the figures.
    pub async fn settle(&self, name: &str, ledger: &Ledger, within: Duration) -> Figures {
        let started = Instant::now();
        let deadline = started + within;
        loop {
            let f = self.count(ledger).await;
            if f.lost.is_empty() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let settled_in = started.elapsed();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let f = self.count(ledger).await;
        println!(
            "LEDGER {name}: {f} (settled in {:.1} s){}{}",
            settled_in.as_secs_f64(),
            if f.lost.is_empty() {
                String::new()
            } else {
                format!(" lost ids {:?}", f.lost)
            },
            if f.duplicated.is_empty() {
                String::new()
            } else {
                format!(" duplicated ids {:?}", f.duplicated)
            },
        );
        f
    }

    /// Asserts zero lost and duplicated, and that no refused submit left a job behind.
    pub fn assert_clean(&self, f: &Figures) {
        assert!(
            f.lost.is_empty() && f.duplicated.is_empty() && f.refused_but_present.is_empty(),
            "ledger not clean: {f} lost {:?} duplicated {:?} refused but present {:?}\n--- logs in {}",
            f.lost,
            f.duplicated,
            f.refused_but_present,
            self.dir.display()
        );
    }
}

impl Drop for Faults {
    fn drop(&mut self) {
        // Processes first (their Drop kills them), then the servers; the directory goes
        // unless the test failed (its logs are then kept for reading).
        self.workers.clear();
        self.api = None;
        self.notifier = None;
        // Chromium's crash handler leaves the process group; anything still naming our
        // directory is ours.
        let dir = self.dir.display().to_string();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for entry in procs.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u32>().ok())
                else {
                    continue;
                };
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                if cmdline.contains(&dir) && !cmdline.contains("postgres") {
                    let _ = Command::new("kill")
                        .args(["-s", "KILL", &pid.to_string()])
                        .output();
                }
            }
        }
        if !std::thread::panicking() {
            self.pg.shutdown();
            self.rabbit.shutdown();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
