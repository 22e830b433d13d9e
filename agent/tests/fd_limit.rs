//! The open-file limit: the agent raises its soft RLIMIT_NOFILE to the hard
//! limit, and running out of descriptors anyway is the agent's own fault
//! (`agent_error`), never blamed on the vendor as `connect_refused`.
//!
//! One test in its own binary: it changes the process's limits.

mod support;

use slaprobe_agent::probe::Prober;
use slaprobe_tests::dns_server::DnsServer;
use slaprobe_tests::http_server::{Route, Routes, TestServer};
use slaprobe_wire::{CheckKind, FailureClass};
use support::{check, http};

/// The lowest descriptor number not in use: the kernel hands out the
/// lowest free one, so a soft limit of this leaves none to open.
fn lowest_free_fd() -> u64 {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open("/dev/null").unwrap();
    f.as_raw_fd() as u64
}

#[tokio::test]
async fn the_fd_limit_is_raised_and_exhaustion_is_an_agent_error() {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    let low = 256.min(hard);
    rlimit::setrlimit(rlimit::Resource::NOFILE, low, hard).unwrap();
    let (soft, hard_now) = slaprobe_agent::process::raise_fd_limit().unwrap();
    assert_eq!(
        (soft, hard_now),
        (hard, hard),
        "soft raised to the hard limit"
    );

    let srv = TestServer::http(Routes::new().route("/", Route::ok("ok"))).await;
    let http_check = http(&srv.url("/"), "2s", |_| {});
    let dns = DnsServer::start().await.unwrap();
    let dns_check = check(CheckKind::Dns, "2s", |s| {
        s.query = Some("www.acme.test".into());
        s.nameservers = Some(vec![dns.addr().to_string()]);
    });
    let prober = Prober::new();
    let ok = prober.probe(&http_check).await;
    assert!(ok.success, "{:?}", ok.failure);
    let ok = prober.probe(&dns_check).await;
    assert!(ok.success, "{:?}", ok.failure);

    // No descriptor left for the probes' sockets.
    let free = lowest_free_fd();
    rlimit::setrlimit(rlimit::Resource::NOFILE, free, hard).unwrap();
    let r = prober.probe(&http_check).await;
    let d = prober.probe(&dns_check).await;
    rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard).unwrap();
    assert_eq!(
        d.class(),
        Some(FailureClass::AgentError),
        "soft limit {free}: {d:#?}"
    );
    assert_eq!(
        r.class(),
        Some(FailureClass::AgentError),
        "soft limit {free}: {r:#?}"
    );
    let msg = &r.failure.as_ref().unwrap().message;
    assert!(msg.contains("file descriptors"), "{msg}");
}
