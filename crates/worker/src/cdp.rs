//! A DevTools connection of the worker's own to the browser itself, for the browser-level
//! calls headless_chrome does not expose. It sends every call of ours through a page's
//! session, where Chromium refuses browser-context management ("Not allowed"): disposing a
//! job's context that way failed every time, and each job left its context (an off-the-record
//! profile with its own storage and network context) in the browser until it was replaced.

use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How long a browser-level call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// A browser-level session on a second websocket (opened at first use, again after a
/// failure). It enables no domain, so Chromium sends it nothing but answers.
pub struct BrowserSession {
    url: String,
    socket: Mutex<(Option<Socket>, u64)>,
}

impl BrowserSession {
    /// `url`: the browser's DevTools websocket (`Browser::get_ws_url`).
    pub fn new(url: String) -> Self {
        BrowserSession {
            url,
            socket: Mutex::new((None, 0)),
        }
    }

    /// Disposes a browser context: closes its pages and drops its cookies, storage and
    /// cache.
    pub fn dispose_context(&self, id: &str) -> anyhow::Result<()> {
        self.call(
            "Target.disposeBrowserContext",
            json!({ "browserContextId": id }),
        )
        .map(drop)
    }

    /// The browser contexts that exist (besides the default one).
    pub fn browser_contexts(&self) -> anyhow::Result<Vec<String>> {
        let answer = self.call("Target.getBrowserContexts", json!({}))?;
        Ok(answer
            .get("browserContextIds")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every target of the browser, its own UI's included, as (type, URL) pairs.
    pub fn targets(&self) -> anyhow::Result<Vec<(String, String)>> {
        // An empty filter entry matches every type (the default filter leaves some out).
        let answer = self.call("Target.getTargets", json!({ "filter": [{}] }))?;
        let field = |t: &Value, name: &str| {
            t.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(answer
            .get("targetInfos")
            .and_then(Value::as_array)
            .map(|all| {
                all.iter()
                    .map(|t| (field(t, "type"), field(t, "url")))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let mut guard = self
            .socket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (socket, next_id) = &mut *guard;
        if socket.is_none() {
            *socket = Some(connect(&self.url)?);
        }
        *next_id += 1;
        let id = *next_id;
        let Some(ws) = socket.as_mut() else {
            bail!("no browser session");
        };
        match exchange(ws, id, method, params) {
            Ok(answer) => answer,
            Err(e) => {
                // The connection is in an unknown state: the next call opens a new one.
                *socket = None;
                Err(e)
            }
        }
    }
}

fn connect(url: &str) -> anyhow::Result<Socket> {
    let (mut ws, _) = tungstenite::connect(url).context("cannot open a browser session")?;
    if let MaybeTlsStream::Plain(stream) = ws.get_mut() {
        stream.set_read_timeout(Some(CALL_TIMEOUT))?;
        stream.set_write_timeout(Some(CALL_TIMEOUT))?;
    }
    Ok(ws)
}

/// Sends one call and reads up to its answer. The outer error is the connection's; the
/// inner one Chromium's answer to the call.
fn exchange(
    ws: &mut Socket,
    id: u64,
    method: &str,
    params: Value,
) -> anyhow::Result<anyhow::Result<Value>> {
    let call = json!({ "id": id, "method": method, "params": params });
    ws.send(Message::text(call.to_string()))?;
    loop {
        let text = match ws.read()? {
            Message::Text(text) => text,
            Message::Close(_) => bail!("the browser closed its session"),
            _ => continue,
        };
        let answer: Value = serde_json::from_str(text.as_str())?;
        if answer.get("id").and_then(Value::as_u64) != Some(id) {
            continue;
        }
        return Ok(match answer.get("error") {
            Some(error) => Err(anyhow::anyhow!(
                "{method} failed: {}",
                error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
            )),
            None => Ok(answer.get("result").cloned().unwrap_or(Value::Null)),
        });
    }
}
