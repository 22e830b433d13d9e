//! [`Wake`]: how a background thread that follows the store sleeps between
//! rounds, is woken early (a batch was committed), and stops (shutdown).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A wake-up flag with a stop flag: [`Wake::wait`] returns early on
/// [`Wake::notify`] and false once [`Wake::stop`] was called. It also holds
/// the sleeper's thread, so that [`Wake::stop_and_join`] can wait for it.
#[derive(Debug, Default)]
pub struct Wake {
    woken: Mutex<bool>,
    cv: Condvar,
    stopped: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Wake {
    /// Wakes the sleeper (or makes its next wait return at once).
    pub fn notify(&self) {
        *self.woken.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Sleeps until notified or `timeout`; false once stopping.
    pub fn wait(&self, timeout: Duration) -> bool {
        let mut woken = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        if !*woken && !self.is_stopped() {
            woken = self
                .cv
                .wait_timeout(woken, timeout)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        *woken = false;
        !self.is_stopped()
    }

    /// Asks the sleeper to end.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.notify();
    }

    /// Keeps the sleeper's thread for [`Wake::stop_and_join`].
    pub fn attach(&self, thread: std::thread::JoinHandle<()>) {
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
    }

    /// Stops the sleeper and waits for its thread to end. Idempotent.
    pub fn stop_and_join(&self) {
        self.stop();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    /// Whether [`Wake::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Stops when `token` is cancelled (needs a tokio runtime; without one
    /// only [`Wake::stop`] ends the sleeper).
    pub fn stop_on(self: &std::sync::Arc<Self>, token: CancellationToken) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let me = self.clone();
            rt.spawn(async move {
                token.cancelled().await;
                me.stop();
            });
        }
    }
}
