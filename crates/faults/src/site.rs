//! A hostile web site on loopback, for the faults no well-behaved HTTP server produces:
//!
//! - `/crash`: kills every Chromium renderer under the registered worker processes as soon as
//!   it is requested (a page that crashes the renderer every time), then holds the socket;
//! - `/kill-worker`: kills the registered worker processes (with their process groups, so
//!   their Chromium) as soon as it is requested: a page that kills its worker every time;
//! - `/drip`: sends its headers, then one byte a second, forever;
//! - `/hang`: accepts the request and never answers;
//! - `/hook-huge`: a webhook receiver answering `200` with 50 MB;
//! - `/hook-hang`: a webhook receiver that reads the request and never answers;
//! - `/huge`: a table of `HUGE_ROWS` rows (tens of MB).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::descendants;

/// Rows of `/huge` (about 25 MB of HTML).
pub const HUGE_ROWS: usize = 300_000;

#[derive(Clone)]
pub struct Hostile {
    pub addr: SocketAddr,
    victims: Arc<Mutex<Vec<u32>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    /// Renderer processes `/crash` killed.
    killed: Arc<Mutex<usize>>,
    /// Bytes `/hook-huge` managed to send before the client hung up.
    huge_sent: Arc<Mutex<usize>>,
}

impl Hostile {
    pub async fn start() -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let site = Hostile {
            addr: listener.local_addr().unwrap(),
            victims: Arc::default(),
            hits: Arc::default(),
            killed: Arc::default(),
            huge_sent: Arc::default(),
        };
        let s = site.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.serve(stream).await;
                });
            }
        });
        site
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The worker processes whose Chromium renderers `/crash` kills.
    pub fn set_victims(&self, pids: Vec<u32>) {
        *self.victims.lock().unwrap() = pids;
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Bytes of the 50 MB answer of `/hook-huge` written before the client hung up.
    pub fn huge_answer_sent(&self) -> usize {
        *self.huge_sent.lock().unwrap()
    }

    pub fn renderers_killed(&self) -> usize {
        *self.killed.lock().unwrap()
    }

    async fn serve(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head);
        let path = text
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .split('?')
            .next()
            .unwrap_or("/")
            .to_string();
        *self.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        match path.as_str() {
            "/crash" => {
                let victims = self.victims.lock().unwrap().clone();
                for pid in victims {
                    for (child, _, cmdline) in descendants(pid) {
                        if cmdline.contains("--type=renderer") {
                            let _ = Command::new("kill")
                                .args(["-s", "KILL", &child.to_string()])
                                .output();
                            *self.killed.lock().unwrap() += 1;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            "/kill-worker" => {
                let victims = self.victims.lock().unwrap().clone();
                for pid in victims {
                    let _ = Command::new("kill")
                        .args(["-s", "KILL", "--", &format!("-{pid}")])
                        .output();
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            "/drip" => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body>")
                    .await?;
                for _ in 0..600 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    stream.write_all(b"x").await?;
                }
            }
            "/hang" | "/hook-hang" => tokio::time::sleep(Duration::from_secs(600)).await,
            "/hook-huge" => {
                let size = 50 * 1024 * 1024;
                stream
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n").as_bytes(),
                    )
                    .await?;
                let chunk = vec![b'x'; 64 * 1024];
                for _ in 0..size / chunk.len() {
                    stream.write_all(&chunk).await?;
                    *self.huge_sent.lock().unwrap() += chunk.len();
                }
            }
            "/huge" => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<!doctype html><title>huge</title><table>")
                    .await?;
                let mut chunk = String::new();
                for i in 0..HUGE_ROWS {
                    chunk.push_str(&format!(
                        "<tr><td>{i}</td><td>row number {i} of the huge page</td><td>{}</td></tr>",
                        i * 7
                    ));
                    if chunk.len() > 64 * 1024 {
                        stream.write_all(chunk.as_bytes()).await?;
                        chunk.clear();
                    }
                }
                chunk.push_str("</table>");
                stream.write_all(chunk.as_bytes()).await?;
            }
            _ => {
                stream
                    .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    .await?;
            }
        }
        Ok(())
    }
}
