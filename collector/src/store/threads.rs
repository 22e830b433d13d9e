//! The backends' threads: the writer queue ([`WriteJob`], [`submit_insert`])
//! and the background jobs of a store handle ([`Background`]).

use super::{BatchOutcome, NewResult, StoreError};

/// Background threads of a store handle (the compactor), stopped and
/// joined by the backend's `close`.
#[derive(Default)]
pub(crate) struct Background {
    threads: std::sync::Mutex<Vec<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
}

impl Background {
    /// Runs `job` every `every` on a thread of its own until [`Background::stop`].
    pub(super) fn spawn(
        &self,
        name: &str,
        every: std::time::Duration,
        mut job: impl FnMut() + Send + 'static,
    ) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    job();
                }
            })
            .map_err(|e| StoreError::Task(format!("cannot start {name}: {e}")))?;
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((tx, h));
        Ok(())
    }

    /// Signals every thread to stop and waits for the job they are running.
    pub(crate) async fn stop(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        if threads.is_empty() {
            return;
        }
        let _ = tokio::task::spawn_blocking(move || {
            for (tx, h) in threads {
                drop(tx);
                let _ = h.join();
            }
        })
        .await;
    }
}

/// A job for a backend's writer thread(s), taken from a bounded queue.
pub(crate) enum WriteJob {
    Insert {
        agent: String,
        location: String,
        received_ms: i64,
        rows: Vec<NewResult>,
        reply: tokio::sync::oneshot::Sender<Result<BatchOutcome, StoreError>>,
    },
    Close(tokio::sync::oneshot::Sender<()>),
}

/// Queues a batch for the writer and waits for its commit. A full queue is
/// [`StoreError::Overloaded`] (ingest answers 503 + Retry-After), a stopped
/// writer [`StoreError::Closed`].
pub(crate) async fn submit_insert(
    writer: &tokio::sync::mpsc::Sender<WriteJob>,
    agent: &str,
    location: &str,
    received_ms: i64,
    rows: Vec<NewResult>,
) -> Result<BatchOutcome, StoreError> {
    use tokio::sync::mpsc::error::TrySendError;
    let (reply, rx) = tokio::sync::oneshot::channel();
    let job = WriteJob::Insert {
        agent: agent.to_string(),
        location: location.to_string(),
        received_ms,
        rows,
        reply,
    };
    writer.try_send(job).map_err(|e| match e {
        TrySendError::Full(_) => StoreError::Overloaded,
        TrySendError::Closed(_) => StoreError::Closed,
    })?;
    rx.await.map_err(|_| StoreError::Closed)?
}
