//! Waiting for something a test cannot be told about directly (a child
//! process, an HTTP endpoint, a background task's side effects): poll a probe
//! until it answers or a deadline passes, then fail naming what never
//! happened and how long the test waited. One helper, sync and async, so
//! every e2e test waits and fails the same way; where a test can be told
//! (a readiness signal, `tokio::time::pause()`), it should be instead.

use std::future::Future;
use std::time::{Duration, Instant};

/// How late a timer, a deadline or a probe's end may come on a loaded
/// 2-core machine (the suite shares its two cores with builds and other
/// tests; load averages of 16 were seen): the slack upper bounds of the form
/// "it ends at its timeout" allow. Large next to scheduling noise, small next
/// to what a missing timeout would take (the hostile servers hang for 30 s
/// or for ever).
pub const LOADED_SLACK: Duration = Duration::from_millis(1500);

/// Polls `probe` every 50 ms until it returns `Some` (returned) or
/// `timeout` passes (panics: "timed out after … waiting for `what`").
pub fn wait_for<T>(what: &str, timeout: Duration, probe: impl FnMut() -> Option<T>) -> T {
    wait_for_every(what, timeout, Duration::from_millis(50), probe)
}

/// [`wait_for`], polling every `interval`: for probes that are costly to
/// ask (a full `/metrics` scrape) or retries that should back off.
pub fn wait_for_every<T>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    wait_for_state(what, timeout, interval, || probe().ok_or(()))
}

/// The one polling loop: calls `probe` every `interval` until it returns
/// `Ok` (returned) or `timeout` passes; then panics naming `what` and the
/// last `Err` the probe gave (what it saw instead).
pub fn wait_for_state<T, S: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Result<T, S>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe() {
            Ok(v) => return v,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what} (last seen: {last:?})"
        );
        std::thread::sleep(interval);
    }
}

/// The async [`wait_for_every`]: awaits `probe()` every `interval` (tokio's
/// clock) until it returns `Some` or `timeout` passes (panics naming `what`).
pub async fn wait_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_until_state(what, timeout, interval, || {
        let answer = probe();
        async move { answer.await.ok_or(()) }
    })
    .await
}

/// The async [`wait_for_state`]: awaits `probe()` every `interval` until it
/// returns `Ok`, or panics after `timeout` naming `what` and the last `Err`.
pub async fn wait_until_state<T, S, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: F,
) -> T
where
    S: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what} (last seen: {last:?})"
        );
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_what_the_probe_found() {
        let mut n = 0;
        let got = wait_for("the third poll", Duration::from_secs(5), || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "waiting for a thing that never happens")]
    fn fails_naming_what_never_happened() {
        wait_for_every(
            "a thing that never happens",
            Duration::from_millis(30),
            Duration::from_millis(5),
            || None::<()>,
        );
    }

    #[tokio::test]
    async fn async_wait_polls_until_found_and_fails_after_its_timeout() {
        let mut n = 0;
        let got = wait_until(
            "the second poll",
            Duration::from_secs(5),
            Duration::from_millis(5),
            || {
                n += 1;
                let v = n;
                async move { (v == 2).then_some(v) }
            },
        )
        .await;
        assert_eq!(got, 2);
        let never = tokio::spawn(wait_until(
            "never",
            Duration::from_millis(30),
            Duration::from_millis(5),
            || async { None::<()> },
        ))
        .await;
        let panic = never.unwrap_err().into_panic();
        let msg = panic.downcast_ref::<String>().unwrap();
        assert!(msg.contains("waiting for never"), "{msg}");
    }
}
