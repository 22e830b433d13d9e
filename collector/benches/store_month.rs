//! Bytes on disk per result, before and after compaction, for issue 12's
//! scenario: 60 checks × 3 locations (one agent each), one https result a
//! minute per check and location, as many days as asked (default 30: a
//! month, 7.78 M results). Results look like the agent's: nanosecond
//! timings that differ every time (the entropy compaction cannot remove),
//! TLS details, a failure now and then.
//!
//! Prints the store size uncompacted, the compaction time, the size once
//! compacted (after `incremental_vacuum` and a WAL checkpoint), and one
//! contract's month read back through `for_each_result` with its digest
//! checked against the digest before compaction.
//!
//! Run: `cargo bench -p slaprobe-collector --bench store_month [-- DAYS]`
//! (`STORE_BENCH_DIR` keeps the store there instead of a temporary directory).

use std::time::Instant;

use sha2::{Digest, Sha256};
use slaprobe_collector::store::{
    LedgerConn, LedgerWrite, Maintenance, NewResult, Reader, Store, StoreAddress,
};
use slaprobe_wire::{CheckKind, FailureClass};

const CHECKS: usize = 60;
const AGENTS: [(&str, &str); 3] = [("ams-1", "ams"), ("fra-1", "fra"), ("nyc-1", "nyc")];
/// 2026-11-01T00:00:00Z.
const START_MS: i64 = 1_793_491_200_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A duration around `base` seconds at nanosecond precision, as `Duration::as_secs_f64` prints it.
    fn secs(&mut self, base: f64) -> f64 {
        let jitter = 0.6 + (self.next() % 1_000_000) as f64 / 1_250_000.0;
        ((base * jitter) * 1e9).round() / 1e9
    }
}

fn ts(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

fn result(rng: &mut Rng, agent: usize, seq: u64, check: usize, started: i64) -> NewResult {
    let (id, loc) = AGENTS[agent];
    let fail = rng.next().is_multiple_of(500);
    let (resolve, connect, tls) = (rng.secs(0.0004), rng.secs(0.0011), rng.secs(0.0042));
    let (processing, transfer) = (rng.secs(0.05), rng.secs(0.0002));
    let total = resolve + connect + tls + processing + transfer + rng.secs(0.0001);
    let days_left = (1_801_526_400_000 - started) as f64 / 86_400_000.0;
    let name = format!("site{:02}-www", check);
    let raw = if fail {
        format!(
            r#"{{"seq":{seq},"agent":"{id}","location":"{loc}","check":"{name}","kind":"http","target":"https://www.site{check:02}.example/","started_at":"{}","duration_seconds":{},"success":false,"failure":{{"class":"timeout","message":"no response headers within the timeout (waited 10.000s)"}},"http":{{"version":"HTTP/1.1","redirects":0,"body_bytes":0,"remote_addr":"192.0.2.{check}:443","phases":{{"resolve":{resolve},"connect":{connect},"tls":{tls}}}}}}}"#,
            ts(started),
            10.0 + rng.secs(0.001),
        )
    } else {
        format!(
            r#"{{"seq":{seq},"agent":"{id}","location":"{loc}","check":"{name}","kind":"http","target":"https://www.site{check:02}.example/","started_at":"{}","duration_seconds":{total},"success":true,"http":{{"status":200,"version":"HTTP/1.1","redirects":0,"body_bytes":{},"remote_addr":"192.0.2.{check}:443","phases":{{"resolve":{resolve},"connect":{connect},"tls":{tls},"processing":{processing},"transfer":{transfer}}}}},"tls":{{"version":"TLSv1.3","cipher":"TLS13_AES_128_GCM_SHA256","not_after":"2027-02-01T00:00:00Z","earliest_not_after":"2027-02-01T00:00:00Z","days_left":{days_left},"issuer":"CN=Example CA R3","subject":"CN=www.site{check:02}.example","sans":["www.site{check:02}.example","site{check:02}.example"],"chain_valid":true,"hostname_valid":true}}}}"#,
            ts(started),
            27_000 + rng.next() % 64,
        )
    };
    NewResult {
        seq,
        check: name,
        location: loc.into(),
        kind: CheckKind::Http,
        started_at_ms: started,
        success: !fail,
        class: fail.then_some(FailureClass::Timeout),
        raw: raw.into_bytes(),
    }
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    ["slaprobe.db", "slaprobe.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

fn checkpoint(dir: &std::path::Path) {
    let c = rusqlite::Connection::open(dir.join("slaprobe.db")).unwrap();
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

/// Count and digest of one contract's checks (the first three) over the run.
fn contract_digest(reader: &Reader, to_ms: i64) -> (u64, String, f64) {
    let checks: Vec<String> = (0..3).map(|c| format!("site{c:02}-www")).collect();
    let t0 = Instant::now();
    let mut h = Sha256::new();
    let mut n = 0u64;
    reader
        .for_each_result(&checks, START_MS, to_ms, |r| {
            h.update(r.raw.as_bytes());
            h.update(b"\n");
            n += 1;
        })
        .unwrap();
    (n, hex::encode(h.finalize()), t0.elapsed().as_secs_f64())
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let days: i64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(30);
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("STORE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = Store::open_sqlite(&dir).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut seqs = [0u64; 3];
    let minutes = days * 1440;
    let t0 = Instant::now();
    let mut total = 0u64;
    // Ten minutes per batch and agent, received a few seconds after the last.
    for block in (0..minutes).step_by(10) {
        for (a, seq) in seqs.iter_mut().enumerate() {
            let mut rows = Vec::with_capacity(10 * CHECKS);
            for m in block..(block + 10).min(minutes) {
                for c in 0..CHECKS {
                    *seq += 1;
                    let started =
                        START_MS + m * 60_000 + (c as i64 * 937 + a as i64 * 211) % 59_000;
                    rows.push(result(&mut rng, a, *seq, c, started));
                }
            }
            total += rows.len() as u64;
            let received = START_MS + (block + 10) * 60_000 + 3_000;
            let (id, loc) = AGENTS[a];
            rt.block_on(store.insert_batch(id, loc, received, rows))
                .unwrap();
        }
    }
    let ingest_s = t0.elapsed().as_secs_f64();
    rt.block_on(store.close());
    checkpoint(&dir);
    let before = disk_bytes(&dir);
    let loc = StoreAddress::Sqlite(dir.clone());
    let reader = Reader::open_sqlite(&dir).unwrap();
    let end_ms = START_MS + minutes * 60_000;
    let (n0, d0, _) = contract_digest(&reader, end_ms);
    println!(
        "store_month days={days} results={total} ingest_s={ingest_s:.1} uncompacted_bytes={before} uncompacted_B_per_result={:.1}",
        before as f64 / total as f64
    );

    // The SLA ledger has consumed everything; compact as of an hour after the end.
    let head = reader.feed_head().unwrap();
    let base = reader.ledger_since(u64::MAX).unwrap().state.version;
    LedgerConn::open(&loc)
        .unwrap()
        .write(&LedgerWrite {
            base,
            cursor: head,
            rows: vec![],
            reset_contracts: vec![],
        })
        .unwrap();
    let t1 = Instant::now();
    let stats = Maintenance::open(&loc)
        .unwrap()
        .compact(end_ms + 2 * 3_600_000 + 4_000, 3_600_000)
        .unwrap();
    let compact_s = t1.elapsed().as_secs_f64();
    checkpoint(&dir);
    let after = disk_bytes(&dir);
    let (n1, d1, read_s) = contract_digest(&reader, end_ms);
    assert_eq!((n0, &d0), (n1, &d1), "compaction changed the evidence");
    assert_eq!(reader.count_results().unwrap(), total);
    println!(
        "store_month compacted={} frames={} transactions={} compact_s={compact_s:.1} ({:.0} results/s) compacted_bytes={after} compacted_B_per_result={:.1}",
        stats.results,
        stats.frames,
        stats.transactions,
        stats.results as f64 / compact_s,
        after as f64 / total as f64
    );
    println!(
        "store_month contract_read results={n1} secs={read_s:.2} digest_unchanged=yes peak_rss_mb={:.1}",
        peak_rss_mb()
    );
}
