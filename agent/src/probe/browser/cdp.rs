//! A small Chrome DevTools Protocol client over Chromium's debugging pipe
//! (`--remote-debugging-pipe`: JSON messages, each ended by a NUL byte, on
//! the browser's file descriptors 3 and 4).
//!
//! Commands are matched to answers by id; events are routed by their
//! `sessionId` (flat sessions, `Target.attachToTarget` with `flatten`) to a
//! bounded channel per session. A message larger than [`MAX_MESSAGE`] or a
//! closed pipe ends the connection: every waiting command gets
//! [`CdpError::Closed`] and every session channel closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

/// The largest message read from the browser (a full-page screenshot fits).
pub const MAX_MESSAGE: u64 = 64 * 1024 * 1024;
/// Events queued for one session before further ones are dropped (and counted).
const SESSION_QUEUE: usize = 65_536;

/// What went wrong talking to the browser.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CdpError {
    /// The pipe closed (the browser exited or crashed) or broke.
    #[error("the browser connection closed: {0}")]
    Closed(String),
    /// The browser answered the command with an error.
    #[error("{method}: {message} (code {code})")]
    Command {
        method: String,
        code: i64,
        message: String,
    },
}

/// One protocol event of a session.
#[derive(Debug, Clone)]
pub struct Event {
    pub method: String,
    pub params: Value,
}

type Pending = HashMap<u64, oneshot::Sender<Result<Value, CdpError>>>;

/// State shared with the reader task.
#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    sessions: Mutex<HashMap<String, mpsc::Sender<Event>>>,
    /// Why the connection ended, once it has.
    closed: Mutex<Option<String>>,
    /// Events dropped because a session's queue was full.
    dropped: AtomicU64,
}

/// A connection to one browser.
pub struct Cdp {
    writer: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    next_id: AtomicU64,
    shared: Arc<Shared>,
    broken: AtomicBool,
}

impl std::fmt::Debug for Cdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cdp").finish_non_exhaustive()
    }
}

/// Removes a command's answer slot if its caller gives up waiting.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cdp {
    /// Starts a connection over the browser's pipe ends (`to_browser` is its
    /// fd 3, `from_browser` its fd 4). The reader runs as a task until the
    /// pipe closes.
    pub fn start(
        to_browser: impl AsyncWrite + Send + Unpin + 'static,
        from_browser: impl AsyncRead + Send + Unpin + 'static,
    ) -> Arc<Cdp> {
        let shared = Arc::new(Shared::default());
        let cdp = Arc::new(Cdp {
            writer: tokio::sync::Mutex::new(Box::new(to_browser)),
            next_id: AtomicU64::new(1),
            shared: shared.clone(),
            broken: AtomicBool::new(false),
        });
        tokio::spawn(read_loop(from_browser, shared));
        cdp
    }

    /// Sends `method` (to `session`, or to the browser when `None`) and
    /// waits for its answer. Callers bound the wait with their deadline.
    pub async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, CdpError> {
        if let Some(why) = self.closed() {
            return Err(CdpError::Closed(why));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = Value::String(s.to_string());
        }
        let mut bytes = serde_json::to_vec(&msg).expect("a JSON value serializes");
        bytes.push(0);
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.pending).insert(id, tx);
        let _guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        {
            let mut w = self.writer.lock().await;
            if let Err(e) = async {
                w.write_all(&bytes).await?;
                w.flush().await
            }
            .await
            {
                self.broken.store(true, Ordering::Relaxed);
                return Err(CdpError::Closed(format!("writing to the browser: {e}")));
            }
        }
        match rx.await {
            Ok(r) => r.map_err(|e| match e {
                CdpError::Command { code, message, .. } => CdpError::Command {
                    method: method.to_string(),
                    code,
                    message,
                },
                other => other,
            }),
            Err(_) => Err(CdpError::Closed(
                self.closed().unwrap_or_else(|| "no answer".into()),
            )),
        }
    }

    /// Routes `session`'s events to the returned channel until
    /// [`Cdp::unsubscribe`] (or the connection closes).
    pub fn subscribe(&self, session: &str) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        lock(&self.shared.sessions).insert(session.to_string(), tx);
        rx
    }

    /// Stops routing `session`'s events.
    pub fn unsubscribe(&self, session: &str) {
        lock(&self.shared.sessions).remove(session);
    }

    /// Why the connection ended, if it has.
    pub fn closed(&self) -> Option<String> {
        if self.broken.load(Ordering::Relaxed) {
            return Some("writing to the browser failed".into());
        }
        lock(&self.shared.closed).clone()
    }

    /// Events dropped so far because a session did not keep up.
    pub fn dropped_events(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

async fn read_loop(from_browser: impl AsyncRead + Unpin, shared: Arc<Shared>) {
    let mut reader = BufReader::with_capacity(256 * 1024, from_browser);
    let mut buf = Vec::new();
    let why = loop {
        buf.clear();
        match (&mut reader)
            .take(MAX_MESSAGE)
            .read_until(0, &mut buf)
            .await
        {
            Ok(0) => break "the browser closed its end of the pipe".to_string(),
            Ok(_) if buf.last() != Some(&0) => {
                break if buf.len() as u64 >= MAX_MESSAGE {
                    format!("a message from the browser exceeded {MAX_MESSAGE} bytes")
                } else {
                    "the browser closed its end of the pipe mid-message".to_string()
                };
            }
            Ok(_) => {}
            Err(e) => break format!("reading from the browser: {e}"),
        }
        buf.pop();
        let Ok(mut msg) = serde_json::from_slice::<Value>(&buf) else {
            tracing::debug!("ignoring a browser message that is not JSON");
            continue;
        };
        dispatch(&shared, &mut msg);
    };
    tracing::debug!("browser connection ended: {why}");
    *lock(&shared.closed) = Some(why.clone());
    for (_, tx) in lock(&shared.pending).drain() {
        let _ = tx.send(Err(CdpError::Closed(why.clone())));
    }
    lock(&shared.sessions).clear();
}

fn dispatch(shared: &Shared, msg: &mut Value) {
    if let Some(id) = msg.get("id").and_then(Value::as_u64) {
        let Some(tx) = lock(&shared.pending).remove(&id) else {
            return; // the caller gave up waiting
        };
        let answer = match msg.get_mut("error") {
            Some(err) => Err(CdpError::Command {
                method: String::new(),
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_string(),
            }),
            None => Ok(msg
                .get_mut("result")
                .map(Value::take)
                .unwrap_or(Value::Null)),
        };
        let _ = tx.send(answer);
        return;
    }
    let (Some(method), Some(session)) = (
        msg.get("method").and_then(Value::as_str),
        msg.get("sessionId").and_then(Value::as_str),
    ) else {
        return; // browser-level events: none subscribed
    };
    let sessions = lock(&shared.sessions);
    if let Some(tx) = sessions.get(session) {
        let ev = Event {
            method: method.to_string(),
            params: msg
                .get_mut("params")
                .map(Value::take)
                .unwrap_or(Value::Null),
        };
        if tx.try_send(ev).is_err() {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake browser on an in-memory duplex pipe: answers commands and
    /// sends an event, exactly in the wire format.
    #[tokio::test]
    async fn answers_errors_events_and_close() {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (our_r, our_w) = tokio::io::split(ours);
        let cdp = Cdp::start(our_w, our_r);
        let (their_r, mut their_w) = tokio::io::split(theirs);
        let browser = tokio::spawn(async move {
            let mut r = BufReader::new(their_r);
            let mut buf = Vec::new();
            for _ in 0..2 {
                buf.clear();
                r.read_until(0, &mut buf).await.unwrap();
                buf.pop();
                let m: Value = serde_json::from_slice(&buf).unwrap();
                let id = m["id"].as_u64().unwrap();
                let answer = if m["method"] == "Good.one" {
                    json!({"id": id, "result": {"ok": true}})
                } else {
                    json!({"id": id, "error": {"code": -32601, "message": "no such method"}})
                };
                // An event for the session first, then the answer.
                let ev = json!({"method": "Page.loadEventFired", "sessionId": "S", "params": {"timestamp": 1.5}});
                for v in [ev, answer] {
                    let mut b = serde_json::to_vec(&v).unwrap();
                    b.push(0);
                    their_w.write_all(&b).await.unwrap();
                }
            }
            // Dropping the write half closes the pipe.
        });
        let mut events = cdp.subscribe("S");
        let ok = cdp.call(Some("S"), "Good.one", json!({})).await.unwrap();
        assert_eq!(ok["ok"], true);
        let err = cdp.call(None, "Bad.one", json!({})).await.unwrap_err();
        assert!(
            matches!(&err, CdpError::Command { method, code: -32601, .. } if method == "Bad.one"),
            "{err:?}"
        );
        let ev = events.recv().await.unwrap();
        assert_eq!(ev.method, "Page.loadEventFired");
        assert_eq!(ev.params["timestamp"], 1.5);
        browser.await.unwrap();
        let err = cdp.call(None, "Good.one", json!({})).await.unwrap_err();
        assert!(matches!(err, CdpError::Closed(_)), "{err:?}");
        assert!(cdp.closed().is_some());
    }
}
