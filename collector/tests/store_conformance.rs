//! The store conformance suite, run against both backends: the embedded
//! SQLite store and a real PostgreSQL server started by the test
//! (`slaprobe_tests::postgres`). Same inputs must give the same
//! `BatchOutcome`s, the same agent rows, the same latest results and probe
//! counts, and the same raw bytes in the same (agent, seq) order — also on a
//! database whose default collation is ICU `en-US`, where an unqualified
//! `ORDER BY agent` would sort `agent_a` before `agent-c`.
//!
//! PostgreSQL only: two store handles (two collectors) on one database,
//! overlapping batches inserted concurrently for the same agents, end with
//! exact counts (no lost update, every seq stored once), concurrent first
//! start-ups migrate once, and the ingest rate is measured.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use slaprobe_collector::store::compact::CompactStats;
use slaprobe_collector::store::{
    AgentRow, BatchOutcome, Maintenance, NewResult, ProbeCount, Reader, Store, StoreAddress,
    StoreError, StoredResult, StoredSeq,
};
use slaprobe_tests::postgres::PgServer;
use slaprobe_wire::{CheckKind, FailureClass};

/// Raw JSON as an agent might send it: odd key order, spacing, escapes and
/// non-ASCII, which a normalising column type (`jsonb`) would change.
fn raw(agent: &str, seq: u64, check: &str, extra: &str) -> Vec<u8> {
    format!("{{\"seq\":{seq},  \"zeta\":\"caf\u{e9} \\u00e9\\n\",\"agent\":\"{agent}\",\"check\":\"{check}\",\"a\":1.50{extra}}}").into_bytes()
}

fn row(
    agent: &str,
    seq: u64,
    check: &str,
    location: &str,
    started_at_ms: i64,
    class: Option<FailureClass>,
) -> NewResult {
    NewResult {
        seq,
        check: check.into(),
        location: location.into(),
        kind: CheckKind::Http,
        started_at_ms,
        success: class.is_none(),
        class,
        raw: raw(agent, seq, check, ""),
    }
}

/// One batch: agent, location, received_ms, rows.
type Batch = (&'static str, &'static str, i64, Vec<NewResult>);

/// The scenario both backends are given, in order.
fn scenario() -> Vec<Batch> {
    use FailureClass::*;
    vec![
        // agent_a: seqs 1..=4 in order; a failure; a non-ASCII check name.
        (
            "agent_a",
            "ams",
            1_000,
            vec![
                row("agent_a", 1, "web", "ams", 100, None),
                row("agent_a", 2, "web", "ams", 200, Some(Timeout)),
                row("agent_a", 3, "api", "ams", 150, None),
                row("agent_a", 4, "caf\u{e9}", "ams", 160, Some(HttpStatus)),
            ],
        ),
        // Agent-B: out of order, a gap (seq 3 never comes), a duplicate inside the batch.
        (
            "Agent-B",
            "nyc",
            1_100,
            vec![
                row("Agent-B", 5, "web", "nyc", 500, None),
                row("Agent-B", 1, "web", "nyc", 110, Some(ConnectRefused)),
                row("Agent-B", 2, "api", "nyc", 120, None),
                row("Agent-B", 2, "api", "nyc", 120, None),
                row("Agent-B", 4, "web", "nyc", 400, None),
            ],
        ),
        // agent_a again: a retry overlapping the first batch, plus new seqs;
        // seq 6 ties seq 5's started_at on web/ams (the higher seq wins).
        (
            "agent_a",
            "ams",
            1_200,
            vec![
                row("agent_a", 3, "api", "ams", 150, None),
                row("agent_a", 4, "caf\u{e9}", "ams", 160, Some(HttpStatus)),
                row("agent_a", 6, "web", "ams", 300, None),
                row("agent_a", 5, "web", "ams", 300, Some(ConnectTimeout)),
            ],
        ),
        // agent-c: an empty batch first (still records the agent), then one older
        // than the latest web/nyc result (must not replace it).
        ("agent-c", "sgp", 1_300, vec![]),
        (
            "agent-c",
            "nyc",
            1_400,
            vec![
                row("agent-c", 1, "web", "nyc", 450, None),
                row("agent-c", 7, "web", "sgp", 50, Some(DnsError)),
            ],
        ),
        // Agent-B resends everything: all duplicates; last_seen moves, counts do not.
        (
            "Agent-B",
            "nyc",
            1_500,
            vec![
                row("Agent-B", 1, "web", "nyc", 110, Some(ConnectRefused)),
                row("Agent-B", 5, "web", "nyc", 500, None),
            ],
        ),
    ]
}

/// Everything observable about a store.
#[derive(Debug, PartialEq)]
struct Snapshot {
    outcomes: Vec<BatchOutcome>,
    agents: Vec<AgentRow>,
    latest: Vec<StoredResult>,
    counts: Vec<ProbeCount>,
    results: Vec<StoredResult>,
    /// The web results in [0, 300): the period filter.
    web_window: Vec<(String, u64)>,
    total: u64,
}

fn all_checks() -> Vec<String> {
    ["web", "api", "caf\u{e9}", "nope"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// agents, latest, probe counts, every result, the web window, the total.
type Everything = (
    Vec<AgentRow>,
    Vec<StoredResult>,
    Vec<ProbeCount>,
    Vec<StoredResult>,
    Vec<(String, u64)>,
    u64,
);

fn read_all(r: &Reader) -> Result<Everything, StoreError> {
    let web: Vec<(String, u64)> = r
        .results_between(&["web".to_string()], 0, 300)?
        .into_iter()
        .map(|s| (s.agent, s.seq))
        .collect();
    Ok((
        r.agents()?,
        r.latest()?,
        r.probe_counts()?,
        r.results_between(&all_checks(), i64::MIN, i64::MAX)?,
        web,
        r.count_results()?,
    ))
}

/// What every read returns now.
async fn run_reads(store: &Store) -> Everything {
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.read_blocking(read_all))
        .await
        .unwrap()
        .unwrap()
}

async fn run(store: &Store) -> Snapshot {
    let mut outcomes = Vec::new();
    for (agent, loc, received, rows) in scenario() {
        outcomes.push(
            store
                .insert_batch(agent, loc, received, rows)
                .await
                .unwrap(),
        );
    }
    let (agents, latest, counts, results, web_window, total) = store.read(read_all).await.unwrap();
    Snapshot {
        outcomes,
        agents,
        latest,
        counts,
        results,
        web_window,
        total,
    }
}

fn open(location: StoreAddress) -> Store {
    std::thread::spawn(move || Store::open(&location))
        .join()
        .unwrap()
        .unwrap()
}

/// The outcome of the scenario's `batch_no`th batch (every batch is numbered, an empty one too).
fn out(batch_no: u64, inserted: &[bool]) -> BatchOutcome {
    let stored = inserted.iter().filter(|b| **b).count() as u64;
    BatchOutcome {
        inserted: inserted.to_vec(),
        stored,
        duplicates: inserted.len() as u64 - stored,
        batch_no,
    }
}

/// What the scenario must produce, written out (so both backends cannot be wrong alike).
fn check_expected(s: &Snapshot) {
    let (t, f) = (true, false);
    assert_eq!(
        s.outcomes,
        vec![
            out(1, &[t, t, t, t]),
            out(2, &[t, t, t, f, t]),
            out(3, &[f, f, t, t]),
            out(4, &[]),
            out(5, &[t, t]),
            out(6, &[f, f])
        ]
    );
    let agents: Vec<(&str, &str, u64, u64, u64, i64, u64)> = s
        .agents
        .iter()
        .map(|a| {
            (
                a.id.as_str(),
                a.location.as_str(),
                a.max_seq,
                a.results,
                a.duplicates,
                a.last_seen_ms,
                a.missing(),
            )
        })
        .collect();
    assert_eq!(
        agents,
        vec![
            ("Agent-B", "nyc", 5, 4, 3, 1_500, 1),
            ("agent-c", "nyc", 7, 2, 0, 1_400, 5),
            ("agent_a", "ams", 6, 6, 2, 1_200, 0)
        ]
    );
    // Bytewise order of agent ids, then seq.
    let order: Vec<(&str, u64)> = s
        .results
        .iter()
        .map(|r| (r.agent.as_str(), r.seq))
        .collect();
    assert_eq!(
        order,
        vec![
            ("Agent-B", 1),
            ("Agent-B", 2),
            ("Agent-B", 4),
            ("Agent-B", 5),
            ("agent-c", 1),
            ("agent-c", 7),
            ("agent_a", 1),
            ("agent_a", 2),
            ("agent_a", 3),
            ("agent_a", 4),
            ("agent_a", 5),
            ("agent_a", 6)
        ]
    );
    for r in &s.results {
        assert_eq!(
            r.raw.as_bytes(),
            raw(&r.agent, r.seq, &r.check, "").as_slice(),
            "raw bytes changed"
        );
    }
    let b1 = &s.results[0];
    assert_eq!(
        (
            b1.check.as_str(),
            b1.location.as_str(),
            b1.started_at_ms,
            b1.success,
            b1.class.as_deref()
        ),
        ("web", "nyc", 110, false, Some("connect_refused"))
    );
    let latest: Vec<(&str, &str, &str, u64)> = s
        .latest
        .iter()
        .map(|l| {
            (
                l.check.as_str(),
                l.location.as_str(),
                l.agent.as_str(),
                l.seq,
            )
        })
        .collect();
    assert_eq!(
        latest,
        vec![
            ("api", "ams", "agent_a", 3),
            ("api", "nyc", "Agent-B", 2),
            ("caf\u{e9}", "ams", "agent_a", 4),
            ("web", "ams", "agent_a", 6),
            ("web", "nyc", "Agent-B", 5),
            ("web", "sgp", "agent-c", 7)
        ]
    );
    let counts: Vec<(&str, &str, Option<&str>, u64)> = s
        .counts
        .iter()
        .map(|c| {
            (
                c.check.as_str(),
                c.location.as_str(),
                c.class.as_deref(),
                c.count,
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("api", "ams", None, 1),
            ("api", "nyc", None, 1),
            ("caf\u{e9}", "ams", Some("http_status"), 1),
            ("web", "ams", None, 2),
            ("web", "ams", Some("connect_timeout"), 1),
            ("web", "ams", Some("timeout"), 1),
            ("web", "nyc", None, 3),
            ("web", "nyc", Some("connect_refused"), 1),
            ("web", "sgp", Some("dns_error"), 1)
        ]
    );
    assert_eq!(
        s.web_window,
        vec![
            ("Agent-B".to_string(), 1),
            ("agent-c".to_string(), 7),
            ("agent_a".to_string(), 1),
            ("agent_a".to_string(), 2)
        ]
    );
    assert_eq!(s.total, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_conform() {
    let pg = PgServer::start();
    // A database whose default collation sorts like people do, not like bytes.
    pg.psql(
        "postgres",
        "CREATE DATABASE conformance TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
    );
    let en_us: String = pg.psql("conformance", "SELECT string_agg(x, ',' ORDER BY x) FROM (VALUES ('agent_a'), ('agent-c'), ('Agent-B')) v(x)");
    assert_eq!(
        en_us.trim(),
        "agent_a,Agent-B,agent-c",
        "the test database should collate by en-US rules"
    );
    let pg_loc = StoreAddress::Postgres(pg.url("conformance"));
    let dir = tempfile::tempdir().unwrap();
    let sq_loc = StoreAddress::Sqlite(dir.path().join("data"));

    // Nothing there yet: offline readers say so.
    for loc in [&pg_loc, &sq_loc] {
        let l = loc.clone();
        let e = std::thread::spawn(move || Reader::open(&l))
            .join()
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, StoreError::Missing(_)), "{e}");
    }

    let sqlite = open(sq_loc.clone());
    let postgres = open(pg_loc.clone());
    assert!(!sqlite.is_shared() && postgres.is_shared());
    assert_eq!(
        postgres.describe(),
        format!("postgres://postgres@127.0.0.1:{}/conformance", pg.port())
    );
    let s_snap = run(&sqlite).await;
    let p_snap = run(&postgres).await;
    check_expected(&s_snap);
    assert_eq!(s_snap, p_snap, "the backends disagree");
    for (store, loc) in [(&sqlite, &sq_loc), (&postgres, &pg_loc)] {
        check_feed(store, &s_snap).await;
        check_ledger_rows(store, loc.clone()).await;
    }

    // A reused seq (same agent and seq, other bytes) is a conflict on both
    // backends: the batch stores nothing and names the agent's max_seq.
    for store in [&sqlite, &postgres] {
        let mut other = row("agent_a", 2, "web", "ams", 200, None);
        other.raw = raw("agent_a", 2, "web", ",\"reused\":true");
        let e = store
            .insert_batch(
                "agent_a",
                "ams",
                2_000,
                vec![row("agent_a", 7, "web", "ams", 700, None), other],
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, StoreError::SeqConflict { seq: 2, max_seq: 6 }),
            "{e}"
        );
    }
    assert_eq!(run_reads(&sqlite).await, run_reads(&postgres).await);
    assert_eq!(
        run_reads(&sqlite).await.5,
        12,
        "nothing of the refused batch stored"
    );

    // read_blocking (as the SLA replay uses it) sees the same.
    let p = postgres.clone();
    let n = tokio::task::spawn_blocking(move || p.read_blocking(|r| r.count_results()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 12);

    // Close: further batches are refused, reads still work.
    for store in [&sqlite, &postgres] {
        store.close().await;
        assert!(!store.is_writable());
        let e = store
            .insert_batch(
                "agent_a",
                "ams",
                9,
                vec![row("agent_a", 99, "web", "ams", 1, None)],
            )
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Closed), "{e}");
        assert_eq!(store.read(|r| r.count_results()).await.unwrap(), 12);
    }
    drop((sqlite, postgres));

    // Reopen (migrations idempotent) and read offline: the same rows.
    let offline = |loc: StoreAddress| {
        std::thread::spawn(move || {
            drop(Store::open(&loc).unwrap());
            let r = Reader::open(&loc).unwrap();
            read_all(&r).unwrap()
        })
        .join()
        .unwrap()
    };
    let (a1, l1, c1, r1, w1, n1) = offline(sq_loc);
    let (a2, l2, c2, r2, w2, n2) = offline(pg_loc.clone());
    assert_eq!((&a1, &l1, &c1, &r1, &w1, n1), (&a2, &l2, &c2, &r2, &w2, n2));
    assert_eq!((r1, n1), (s_snap.results, 12));

    // A newer schema than this build knows is refused, by the store and by readers.
    pg.psql(
        "conformance",
        "INSERT INTO schema_version (version) VALUES (99)",
    );
    let l = pg_loc.clone();
    let (e1, e2) =
        std::thread::spawn(move || (Store::open(&l).unwrap_err(), Reader::open(&l).unwrap_err()))
            .join()
            .unwrap();
    assert!(
        matches!(e1, StoreError::NewerSchema { found: 99, .. }),
        "{e1}"
    );
    assert!(
        matches!(e2, StoreError::NewerSchema { found: 99, .. }),
        "{e2}"
    );
    assert!(!e1.to_string().contains("password"));
}

/// The feed: one gapless number per batch in commit order, its stored rows
/// stamped with it, read back in (batch, agent, seq) order from any cursor.
async fn check_feed(store: &Store, snap: &Snapshot) {
    let batches = scenario().len() as u64;
    let (head, all, from2, tail) = store
        .read(|r| {
            let mut all = Vec::new();
            let c = r.feed_after(0, u64::MAX, |x| all.push(x))?;
            let mut from2 = Vec::new();
            let c2 = r.feed_after(2, 1, |x| from2.push(x))?;
            let mut none = Vec::new();
            let c3 = r.feed_after(c, 10, |x| none.push(x))?;
            assert!(none.is_empty());
            Ok((r.feed_head()?, (c, all), (c2, from2), c3))
        })
        .await
        .unwrap();
    assert_eq!(head, batches);
    let (cursor, all) = all;
    assert_eq!(
        cursor, batches,
        "the cursor covers every batch, trailing duplicates-only ones too"
    );
    assert_eq!(tail, batches);
    assert_eq!(all.len(), snap.results.len(), "every stored result once");
    let order: Vec<(u64, &str, u64)> = all
        .iter()
        .map(|r| (r.batch_no, r.agent.as_str(), r.seq))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "feed order is (batch, agent, seq)");
    assert!(all.iter().all(|r| (1..=batches).contains(&r.batch_no)));
    // The first batch's four new rows carry number 1.
    assert_eq!(all.iter().filter(|r| r.batch_no == 1).count(), 4);
    let (c2, from2) = from2;
    assert_eq!(c2, 3);
    assert!(from2.iter().all(|r| r.batch_no == 3));
}

/// The ledger's rows: written in fenced versions, read back by version.
async fn check_ledger_rows(store: &Store, loc: StoreAddress) {
    use slaprobe_collector::store::{LedgerConn, LedgerRow, LedgerWrite};
    let row = |c: &str, m: &str, k: i64, d: &[u8]| LedgerRow {
        contract: c.into(),
        month: m.into(),
        chunk: k,
        data: d.to_vec(),
    };
    let written = std::thread::spawn(move || {
        let mut conn = LedgerConn::open(&loc).unwrap();
        assert!(conn.try_lead().unwrap());
        let v1 = conn
            .write(&LedgerWrite {
                base: 0,
                cursor: 3,
                rows: vec![
                    row("c1", "", -1, b"one"),
                    row("c1", "2026-11", 0, b"a"),
                    row("c2", "", -1, b"x"),
                ],
                reset_contracts: vec![],
            })
            .unwrap();
        // A writer that read version 0 lost the race: fenced off, nothing written.
        let stale = conn.write(&LedgerWrite {
            base: 0,
            cursor: 9,
            rows: vec![row("c1", "", -1, b"stale")],
            reset_contracts: vec![],
        });
        assert!(
            matches!(
                stale,
                Err(StoreError::LedgerConflict {
                    expected: 0,
                    found: 1
                })
            ),
            "{stale:?}"
        );
        let v2 = conn
            .write(&LedgerWrite {
                base: v1,
                cursor: 5,
                rows: vec![row("c1", "2026-11", 0, b"b")],
                reset_contracts: vec!["c2".into()],
            })
            .unwrap();
        (v1, v2)
    })
    .join()
    .unwrap();
    assert_eq!(written, (1, 2));
    let (all, since1) = store
        .read(|r| Ok((r.ledger_since(0)?, r.ledger_since(1)?)))
        .await
        .unwrap();
    assert_eq!((all.state.cursor, all.state.version), (5, 2));
    assert_eq!(
        all.rows,
        vec![row("c1", "", -1, b"one"), row("c1", "2026-11", 0, b"b")]
    );
    assert_eq!(since1.rows, vec![row("c1", "2026-11", 0, b"b")]);
}

/// A fixed web/ams result for `agent` at `seq`: the same bytes whichever collector gets it.
fn load_row(agent: &str, seq: u64) -> NewResult {
    let class = matches!(seq % 7, 0).then_some(FailureClass::Timeout);
    let mut r = row(
        agent,
        seq,
        if matches!(seq % 2, 0) { "web" } else { "api" },
        "ams",
        seq as i64 * 1000,
        class,
    );
    r.raw = raw(
        agent,
        seq,
        &r.check,
        ",\"pad\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"",
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_on_one_database_lose_nothing() {
    let pg = PgServer::start();
    let url = pg.create_database("shared");
    let loc = StoreAddress::Postgres(url);

    // Both collectors start on an empty database at once: one migrates, both open.
    let (l1, l2) = (loc.clone(), loc.clone());
    let t1 = std::thread::spawn(move || Store::open(&l1));
    let t2 = std::thread::spawn(move || Store::open(&l2));
    let c1 = t1.join().unwrap().unwrap();
    let c2 = t2.join().unwrap().unwrap();
    assert_eq!(
        pg.psql("shared", "SELECT count(*) FROM schema_version")
            .trim(),
        slaprobe_collector::store::postgres::SCHEMA_VERSION.to_string(),
        "each migration applied once"
    );

    // Overlapping batches for the same agents through both collectors at once:
    // each of 8 senders sends seqs [k*150+1, k*150+300] of 2 agents in batches of 50.
    const SENDERS: u64 = 8;
    let agents = ["edge-1", "edge-2"];
    let mut tasks = Vec::new();
    for k in 0..SENDERS {
        let store = if k % 2 == 0 { c1.clone() } else { c2.clone() };
        tasks.push(tokio::spawn(async move {
            let mut stored = 0u64;
            let mut sent = 0u64;
            let seqs: Vec<u64> = (k * 150 + 1..=k * 150 + 300).collect();
            for chunk in seqs.chunks(50) {
                for agent in agents {
                    let rows: Vec<NewResult> = chunk.iter().map(|&s| load_row(agent, s)).collect();
                    sent += rows.len() as u64;
                    loop {
                        match store
                            .insert_batch(agent, "ams", k as i64, rows.clone())
                            .await
                        {
                            Ok(o) => {
                                stored += o.stored;
                                break;
                            }
                            Err(StoreError::Overloaded) => {
                                tokio::time::sleep(std::time::Duration::from_millis(5)).await
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            }
            (stored, sent)
        }));
    }
    // A feed follower reads while the senders write, a few batches at a
    // time: it must see every stored result exactly once, in gapless batch
    // order, although two collectors commit concurrently.
    let senders_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = {
        let (store, done) = (c1.clone(), senders_done.clone());
        tokio::spawn(async move {
            let mut cursor = 0u64;
            let mut seen: Vec<(String, u64, u64)> = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let (c, mut got) = store
                    .read(move |r| {
                        let mut got = Vec::new();
                        let c =
                            r.feed_after(cursor, 3, |x| got.push((x.agent, x.seq, x.batch_no)))?;
                        Ok((c, got))
                    })
                    .await
                    .unwrap();
                assert!(c >= cursor);
                let caught_up = c == cursor;
                cursor = c;
                seen.append(&mut got);
                if finished && caught_up {
                    return (cursor, seen);
                }
            }
        })
    };
    let (mut stored, mut sent) = (0, 0);
    for t in tasks {
        let (s, n) = t.await.unwrap();
        stored += s;
        sent += n;
    }
    senders_done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (cursor, seen) = follower.await.unwrap();
    let batches_sent = SENDERS * (300 / 50) * 2;
    assert_eq!(
        cursor, batches_sent,
        "the follower's cursor reached the last batch"
    );
    let distinct: BTreeSet<(String, u64)> = seen.iter().map(|(a, s, _)| (a.clone(), *s)).collect();
    assert_eq!(distinct.len(), seen.len(), "no result delivered twice");
    assert_eq!(seen.len() as u64, stored, "every stored result delivered");
    assert!(
        seen.windows(2).all(|w| w[0].2 <= w[1].2),
        "delivered in batch order"
    );
    let unique = (SENDERS * 150 + 150) * 2;
    assert_eq!(
        stored, unique,
        "every (agent, seq) stored exactly once across both collectors"
    );

    let (agents_rows, latest, counts, total) = c2
        .read(|r| {
            Ok((
                r.agents()?,
                r.latest()?,
                r.probe_counts()?,
                r.count_results()?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(total, unique);
    let per_agent = SENDERS * 150 + 150;
    for a in &agents_rows {
        assert_eq!(
            (a.max_seq, a.results, a.missing(), a.last_seen_ms),
            (per_agent, per_agent, 0, SENDERS as i64 - 1),
            "{a:?}"
        );
    }
    assert_eq!(
        agents_rows.iter().map(|a| a.duplicates).sum::<u64>(),
        sent - unique
    );
    let mut expect: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    for s in 1..=per_agent {
        let r = load_row("x", s);
        *expect
            .entry((r.check, r.class.map(|c| c.as_str().to_string())))
            .or_default() += 2;
    }
    let got: BTreeMap<(String, Option<String>), u64> = counts
        .into_iter()
        .map(|c| ((c.check, c.class), c.count))
        .collect();
    assert_eq!(got, expect, "probe counts lost an update");
    // Latest: the highest started_at per check (seq per_agent for web, per_agent-1 for api), either agent.
    let latest_seqs: BTreeSet<(String, u64)> =
        latest.iter().map(|l| (l.check.clone(), l.seq)).collect();
    assert_eq!(
        latest_seqs,
        BTreeSet::from([
            ("api".to_string(), per_agent - 1),
            ("web".to_string(), per_agent)
        ])
    );

    // Ingest rate: 4 agents × 6,000 results in batches of 500, through both collectors at once.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, agent) in ["rate-1", "rate-2", "rate-3", "rate-4"]
        .into_iter()
        .enumerate()
    {
        let store = if i % 2 == 0 { c1.clone() } else { c2.clone() };
        tasks.push(tokio::spawn(async move {
            let rows: Vec<NewResult> = (1..=6000).map(|s| load_row(agent, s)).collect();
            for chunk in rows.chunks(500) {
                let o = store
                    .insert_batch(agent, "ams", 1, chunk.to_vec())
                    .await
                    .unwrap();
                assert_eq!(o.stored, 500);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "postgres ingest: 24000 results (~{} B each) in {secs:.2} s = {:.0} results/s (2 collectors, batches of 500, fsync on)",
        load_row("rate-1", 1).raw.len(),
        24000.0 / secs
    );
    assert_eq!(
        c1.read(|r| r.count_results()).await.unwrap(),
        unique + 24000
    );
    c1.close().await;
    c2.close().await;
    assert!(
        pg.log_text()
            .lines()
            .all(|l| !l.contains("deadlock detected")),
        "{}",
        pg.log_text()
    );
}

/// Sets the SLA ledger's cursor (compaction only takes rows the ledger has consumed).
fn set_ledger_cursor(loc: &StoreAddress, cursor: u64) {
    use slaprobe_collector::store::{LedgerConn, LedgerWrite};
    let loc = loc.clone();
    std::thread::spawn(move || {
        let mut conn = LedgerConn::open(&loc).unwrap();
        assert!(conn.try_lead().unwrap());
        let r = Reader::open(&loc).unwrap();
        let base = r.ledger_since(u64::MAX).unwrap().state.version;
        conn.write(&LedgerWrite {
            base,
            cursor,
            rows: vec![],
            reset_contracts: vec![],
        })
        .unwrap();
    })
    .join()
    .unwrap();
}

/// One compaction pass as of `now_ms` with a 1 h horizon.
fn compact(loc: &StoreAddress, now_ms: i64) -> CompactStats {
    let loc = loc.clone();
    std::thread::spawn(move || {
        let mut m = Maintenance::open(&loc).unwrap();
        m.compact(now_ms, 3_600_000).unwrap()
    })
    .join()
    .unwrap()
}

/// Everything a read returns, with the batch number a compacted row loses.
fn without_batch(rs: &[StoredResult]) -> Vec<StoredResult> {
    rs.iter()
        .cloned()
        .map(|mut r| {
            r.batch_no = 0;
            r
        })
        .collect()
}

/// Compaction on both backends: settled rows move into chunks only once
/// the ledger has consumed them, reads return exactly what they returned
/// before (raw bytes, order, the period filter, counts, agents, latest),
/// dedup stays exact for compacted seqs, a compacted result's bytes are
/// found by `stored_seq`, and a late result for a compacted day joins its
/// chunk (and the finished day's frames are resealed as one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_conforms() {
    let pg = PgServer::start();
    let pg_loc = StoreAddress::Postgres(pg.create_database("compaction"));
    let dir = tempfile::tempdir().unwrap();
    let sq_loc = StoreAddress::Sqlite(dir.path().join("data"));
    // The scenario's results start in the first hour of 1970 and were
    // received then too: a day later, every one is settled by age.
    let later = 86_400_000 + 7;
    let mut figures = Vec::new();
    for loc in [&sq_loc, &pg_loc] {
        let store = open(loc.clone());
        let before = run(&store).await;
        check_expected(&before);

        // The ledger has not consumed anything: nothing moves.
        assert_eq!(compact(loc, later).results, 0);
        // Nor does anything of an hour not over an hour ago.
        set_ledger_cursor(loc, 3);
        assert_eq!(compact(loc, 3_600_000 + 3_599_999).results, 0);
        // Batches 1..=3 are consumed: their 10 new results move.
        let s = compact(loc, later);
        assert_eq!((s.results, s.transactions), (10, 1), "{s:?}");
        let mid = store.read(read_all).await.unwrap();
        assert_eq!(mid.3.iter().filter(|r| r.batch_no == 0).count(), 10);
        assert_eq!(
            (&mid.0, &mid.1, &mid.2, without_batch(&mid.3), &mid.4, mid.5),
            (
                &before.agents,
                &before.latest,
                &before.counts,
                without_batch(&before.results),
                &before.web_window,
                before.total
            ),
            "reads changed by compaction"
        );

        // Everything consumed and compacted; the scenario again is all duplicates.
        set_ledger_cursor(loc, 100);
        assert_eq!(compact(loc, later).results, 2);
        let mut again = Vec::new();
        for (agent, l, received, rows) in scenario() {
            again.push(store.insert_batch(agent, l, received, rows).await.unwrap());
        }
        for (o, b) in again.iter().zip(&before.outcomes) {
            assert_eq!(o.stored, 0, "a compacted seq was stored twice");
            assert_eq!(o.duplicates as usize, b.inserted.len());
        }
        let after = store.read(read_all).await.unwrap();
        assert_eq!(
            without_batch(&after.3),
            without_batch(&before.results),
            "raw bytes or order changed"
        );
        assert!(after.3.iter().all(|r| r.batch_no == 0));
        assert_eq!(after.5, 12);

        // The bytes of a compacted result, found by check and day.
        let (hit, elsewhere, absent) = store
            .read(|r| {
                Ok((
                    r.stored_seq("agent_a", 4, "caf\u{e9}", 160)?,
                    r.stored_seq("agent_a", 4, "web", 160)?,
                    r.stored_seq("agent_a", 7, "web", 160)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(hit, StoredSeq::Stored(raw("agent_a", 4, "caf\u{e9}", "")));
        assert_eq!(elsewhere, StoredSeq::StoredOtherwise);
        assert_eq!(absent, StoredSeq::Absent);

        // A late result for the compacted day (seq 7 of agent_a, between
        // compacted seqs), uncompacted: read in place, then compacted into
        // the web/ams chunk of day 0.
        let late = store
            .insert_batch(
                "agent_a",
                "ams",
                later,
                vec![row("agent_a", 7, "web", "ams", 250, None)],
            )
            .await
            .unwrap();
        assert_eq!(late.stored, 1);
        let expect: Vec<(String, u64)> = [
            ("Agent-B", 1),
            ("agent-c", 7),
            ("agent_a", 1),
            ("agent_a", 2),
            ("agent_a", 7),
        ]
        .iter()
        .map(|(a, s)| (a.to_string(), *s))
        .collect();
        let web = store.read(read_all).await.unwrap().4;
        assert_eq!(web, expect);
        set_ledger_cursor(loc, 200);
        // Day 0 is over as of then: its chunks are resealed as one frame each.
        let s = compact(loc, later + 2 * 3_600_000);
        assert_eq!(s.results, 1);
        assert!(s.sealed >= 1, "{s:?}");
        let last = store.read(read_all).await.unwrap();
        assert_eq!(last.4, expect);
        assert_eq!(last.5, 13);
        let stored = store
            .read(|r| r.stored_seq("agent_a", 7, "web", 250))
            .await
            .unwrap();
        assert_eq!(stored, StoredSeq::Stored(raw("agent_a", 7, "web", "")));
        if let StoreAddress::Sqlite(d) = loc {
            let c = rusqlite::Connection::open(d.join("slaprobe.db")).unwrap();
            let types: Vec<String> = c
                .prepare("SELECT DISTINCT typeof(data) FROM evidence_chunks")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                types,
                vec!["blob".to_string()],
                "appended frames stay a BLOB"
            );
        }
        store.close().await;
        figures.push((without_batch(&last.3), last.0, last.1, last.2));
    }
    assert_eq!(
        figures[0], figures[1],
        "the backends disagree after compaction"
    );
}

/// Two collectors on one PostgreSQL each run a compactor; both read the same
/// settled rows and compress them before their write transactions. Every
/// result must end up in exactly one frame: the loser of a race rolls back
/// (its delete does not find every row) instead of storing a second copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_compactors_store_each_result_once() {
    let pg = PgServer::start();
    let loc = StoreAddress::Postgres(pg.create_database("two_compactors"));
    let store = open(loc.clone());
    const N: u64 = 12_000;
    for b in 0..(N / 1000) {
        let rows = (b * 1000 + 1..=b * 1000 + 1000)
            .map(|seq| {
                let check = if seq % 2 == 0 { "web" } else { "api" };
                row("agent_a", seq, check, "ams", (seq as i64) * 100, None)
            })
            .collect();
        store
            .insert_batch("agent_a", "ams", 1_000, rows)
            .await
            .unwrap();
    }
    let before = store.read(read_all).await.unwrap();
    assert_eq!(before.3.len() as u64, N);
    set_ledger_cursor(&loc, N / 1000);
    let later = 86_400_000 + 7;
    let (a, b) = {
        let (l1, l2) = (loc.clone(), loc.clone());
        let t1 = std::thread::spawn(move || compact(&l1, later));
        let t2 = std::thread::spawn(move || compact(&l2, later));
        (t1.join().unwrap(), t2.join().unwrap())
    };
    // Whatever either left (a lost race ends its pass early), a third pass takes.
    let c = compact(&loc, later);
    assert_eq!(a.results + b.results + c.results, N, "{a:?} {b:?} {c:?}");
    let after = store.read(read_all).await.unwrap();
    assert_eq!(
        without_batch(&after.3),
        without_batch(&before.3),
        "every result read back once, bytes and order unchanged"
    );
    let in_chunks: i64 = {
        let url = match &loc {
            StoreAddress::Postgres(u) => u.clone(),
            _ => unreachable!(),
        };
        tokio::task::spawn_blocking(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.query_one(
                "SELECT coalesce(sum(n), 0)::bigint FROM evidence_chunks",
                &[],
            )
            .unwrap()
            .get(0)
        })
        .await
        .unwrap()
    };
    assert_eq!(in_chunks as u64, N, "no result stored in two frames");
    store.close().await;
}
