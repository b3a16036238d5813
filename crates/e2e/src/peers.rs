//! Real peers on loopback: a web server for the pages, an HTTP receiver for webhooks and an
//! SMTP server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;

/// A request a peer received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// When the request arrived.
    pub at: Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// What a route answers.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub delay: Duration,
    /// `Some((user, password))`: answer 401 with a Basic challenge unless they are sent.
    pub basic_auth: Option<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn html(body: &str) -> Self {
        Reply {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
            basic_auth: None,
            headers: Vec::new(),
        }
    }

    pub fn status(status: u16) -> Self {
        Reply {
            status,
            content_type: "text/plain",
            body: format!("status {status}").into_bytes(),
            delay: Duration::ZERO,
            basic_auth: None,
            headers: Vec::new(),
        }
    }

    pub fn png(body: Vec<u8>) -> Self {
        Reply {
            content_type: "image/png",
            body,
            ..Reply::status(200)
        }
    }

    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Self {
        self.basic_auth = Some((user.to_string(), password.to_string()));
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Waits this long before answering.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Routes = Arc<Mutex<HashMap<String, Vec<Reply>>>>;

/// An HTTP server on 127.0.0.1 that answers each path with configured replies (the last
/// one repeats) and records every request.
#[derive(Clone)]
pub struct HttpPeer {
    pub addr: SocketAddr,
    routes: Routes,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl HttpPeer {
    pub async fn start() -> HttpPeer {
        Self::start_on("127.0.0.1").await
    }

    /// A peer on another loopback address (such as `127.0.0.2`, which the test stacks do not
    /// allow as a target).
    pub async fn start_on(ip: &str) -> HttpPeer {
        let routes: Routes = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (r, s) = (routes.clone(), seen.clone());
        let server = HttpServer::new(move || {
            let (r, s) = (r.clone(), s.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (r, s) = (r.clone(), s.clone());
                async move {
                    let headers = req
                        .headers()
                        .iter()
                        .map(|(k, v)| {
                            (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                        })
                        .collect();
                    s.lock().expect("lock").push(Seen {
                        method: req.method().to_string(),
                        path: req.path().to_string(),
                        headers,
                        body: body.to_vec(),
                        at: Instant::now(),
                    });
                    let reply = {
                        let mut routes = r.lock().expect("lock");
                        match routes.get_mut(req.path()) {
                            Some(list) if list.len() > 1 => Some(list.remove(0)),
                            Some(list) => list.first().cloned(),
                            None => None,
                        }
                    };
                    match reply {
                        Some(reply)
                            if reply.basic_auth.as_ref().is_some_and(|(u, p)| {
                                let want = format!(
                                    "Basic {}",
                                    base64::engine::general_purpose::STANDARD
                                        .encode(format!("{u}:{p}"))
                                );
                                req.headers()
                                    .get("authorization")
                                    .and_then(|v| v.to_str().ok())
                                    != Some(want.as_str())
                            }) =>
                        {
                            HttpResponse::Unauthorized()
                                .insert_header(("WWW-Authenticate", "Basic realm=\"test\""))
                                .body("authentication required")
                        }
                        Some(reply) => {
                            if !reply.delay.is_zero() {
                                tokio::time::sleep(reply.delay).await;
                            }
                            let mut resp = HttpResponse::build(
                                actix_web::http::StatusCode::from_u16(reply.status)
                                    .expect("status"),
                            );
                            resp.content_type(reply.content_type);
                            for (k, v) in &reply.headers {
                                resp.insert_header((k.as_str(), v.as_str()));
                            }
                            resp.body(reply.body)
                        }
                        None => HttpResponse::NotFound().body("not found"),
                    }
                }
            }))
        })
        .workers(2)
        .disable_signals()
        .bind((ip, 0))
        .expect("bind");
        let addr = server.addrs()[0];
        tokio::spawn(server.run());
        HttpPeer { addr, routes, seen }
    }

    /// Answers `path` with `replies` in turn, the last one from then on.
    pub fn route(&self, path: &str, replies: Vec<Reply>) {
        self.routes
            .lock()
            .expect("lock")
            .insert(path.to_string(), replies);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request this peer has seen, on any path.
    pub fn seen_all(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    /// Waits until `path` has received `n` requests.
    pub async fn wait_for(&self, path: &str, n: usize, within: Duration) -> Vec<Seen> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let seen = self.seen(path);
            if seen.len() >= n || tokio::time::Instant::now() >= deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A received email.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub rcpt: Vec<String>,
    pub raw: Vec<u8>,
}

impl Mail {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a parsable email")
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_string()
    }

    pub fn html(&self) -> String {
        self.parsed()
            .body_html(0)
            .map(|s| s.into_owned())
            .unwrap_or_default()
    }

    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|s| s.into_owned())
            .unwrap_or_default()
    }
}

#[derive(Clone, Default)]
struct SmtpHandler {
    current: Mail,
    inbox: Arc<Mutex<Vec<Mail>>>,
}

impl mailin_embedded::Handler for SmtpHandler {
    fn mail(
        &mut self,
        _ip: std::net::IpAddr,
        _domain: &str,
        _from: &str,
    ) -> mailin_embedded::Response {
        self.current = Mail::default();
        mailin_embedded::response::OK
    }

    fn rcpt(&mut self, to: &str) -> mailin_embedded::Response {
        self.current.rcpt.push(to.to_string());
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.raw.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        self.inbox
            .lock()
            .expect("lock")
            .push(std::mem::take(&mut self.current));
        mailin_embedded::response::OK
    }
}

/// An SMTP server (mailin-embedded) on 127.0.0.1 that keeps what it receives.
#[derive(Clone)]
pub struct SmtpPeer {
    pub addr: SocketAddr,
    inbox: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpPeer {
    pub fn start() -> SmtpPeer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let inbox: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let handler = SmtpHandler {
            current: Mail::default(),
            inbox: inbox.clone(),
        };
        let mut server = mailin_embedded::Server::new(handler);
        server
            .with_name("smtp.test")
            .with_num_threads(2)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpPeer { addr, inbox }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.inbox.lock().expect("lock").clone()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mails = self.mails();
            if mails.len() >= n || tokio::time::Instant::now() >= deadline {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An S3-compatible server (moto's server mode) on 127.0.0.1, killed on drop.
pub struct S3Peer {
    pub endpoint: String,
    child: std::process::Child,
}

impl S3Peer {
    /// Starts the server and creates `bucket`.
    pub async fn start(bucket: &str) -> S3Peer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]', done by scripts/ensure-deps.sh)");
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(&endpoint).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let resp = http
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .expect("create bucket");
        assert!(
            resp.status().is_success(),
            "bucket created: {}",
            resp.status()
        );
        S3Peer { endpoint, child }
    }
}

impl Drop for S3Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP forwarder on loopback in front of a real server (PostgreSQL, RabbitMQ), which a
/// test can cut (every connection dropped, the port closed) and restore on the same port.
pub struct TcpProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = TcpProxy {
            addr,
            target,
            task: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let target = self.target;
        let task = tokio::spawn(async move {
            let mut pipes = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        pipes.spawn(async move {
                            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                        });
                    }
                    Some(_) = pipes.join_next(), if !pipes.is_empty() => {}
                }
            }
            // Dropping the task drops the listener and every pipe with it.
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Closes the port and every connection through it.
    pub async fn cut(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}
