//! The SLA ledger against the offline evaluation: random results around
//! October 2026 (Amsterdam, 5-minute slots, DST change included) committed
//! batch by batch with realistic delays and back-fills hours late, a keeper
//! run every few minutes of simulated time, a follower built only from the
//! rows the keeper wrote, and a keeper restarted from those rows mid-month.
//! At every checkpoint the month-to-date status (keeper and follower) equals
//! `evaluate_month` over the committed results to the slot: slot counts,
//! availability, downtime, incidents, credit, budget and the latency `met`
//! flags; the latency value is within the sketch's stated 0.2 %; the
//! counters never step back and count back-filled slots. Canary results and
//! `agent_error`s (rule 1a) are among them, back-filled canaries too.

mod sla_common;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use sla_common::{contract, ts};
use slaprobe_collector::sla::ledger::{Keeper, LedgerData, LedgerSource};
use slaprobe_collector::sla::{
    Contract, ContractStatus, Month, MonthReport, ObjectiveKind, Observation, SlaCounters,
    evaluate_month,
};
use slaprobe_collector::store::{StoreError, StoredResult};
use slaprobe_wire::ProbeResult;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const LOCS: [&str; 3] = ["ams", "fra", "nyc"];
const CHECKS: [&str; 3] = ["a", "b", "c"];
const CLASSES: [&str; 4] = ["timeout", "http_status", "connect_refused", "agent_error"];
/// Canaries (rule 1a): part of no contract, read by every one.
const CANARIES: [&str; 2] = ["cn-dns", "cn-web"];

fn the_contract() -> Contract {
    let mut c = the_contract_without_canaries();
    c.canaries = CANARIES.iter().map(|s| s.to_string()).collect();
    c
}

fn the_contract_without_canaries() -> Contract {
    contract(
        r#"name = "k"
vendor = "V"
timezone = "Europe/Amsterdam"
checks = ["a", "b", "c"]
slot = "5m"
quorum = 2
objectives = [
  { kind = "availability", target = 99.5 },
  { kind = "latency", phase = "processing", percentile = 95, max = "900ms" },
]
maintenance = [{ weekly = "Sun 03:00", duration = "1h" }, { start = "2026-10-14T12:02:00", duration = "47m" }]
credits = [{ below = 99.5, percent = 10 }, { below = 95, percent = 50 }]
"#,
    )
}

/// A stored result and when it is committed.
struct Gen {
    row: StoredResult,
    commit: Timestamp,
}

fn raw(
    seq: u64,
    loc: &str,
    check: &str,
    t: Timestamp,
    fail: Option<&str>,
    processing: f64,
) -> String {
    let head = format!(
        r#"{{"seq":{seq},"agent":"ag-{loc}","location":"{loc}","check":"{check}","kind":"http","target":"http://{check}/","started_at":"{t}","#
    );
    match fail {
        None => format!(
            r#"{head}"duration_seconds":{d},"success":true,"http":{{"status":200,"version":"HTTP/1.1","redirects":0,"body_bytes":1,"phases":{{"processing":{processing}}}}}}}"#,
            d = processing * 2.0
        ),
        Some(class) => format!(
            r#"{head}"duration_seconds":10.0,"success":false,"failure":{{"class":"{class}","message":"{class} at {loc}"}}}}"#
        ),
    }
}

/// Results from 2026-09-30T21:00Z to 2026-11-01T01:00Z: bursts of failures,
/// a few results per slot and location, exact ties; most committed within a
/// minute, 3 % back-filled up to 6 hours late. A quarter are canary results;
/// each location's network goes down for stretches in which its canaries
/// (mostly) and its checks fail together, and `agent_error`s occur anywhere.
fn generate(seed: u64, n: usize) -> Vec<Gen> {
    let mut rng = Rng(seed);
    let start = ts("2026-09-30T21:00:00Z");
    let span = 745 * 3600 + 4 * 3600;
    let mut out = Vec::with_capacity(n);
    let mut bad_until = 0i64;
    let mut seq = [0u64; 3];
    // Per location, stretches [from, to) in seconds from `start` when its own network is down.
    let net_down: Vec<Vec<(i64, i64)>> = (0..3)
        .map(|_| {
            (0..10)
                .map(|_| {
                    let from = rng.below(span) as i64;
                    (from, from + 600 + rng.below(3 * 3600) as i64)
                })
                .collect()
        })
        .collect();
    for _ in 0..n {
        let s = (rng.below(span) as i64) / 20 * 20;
        if rng.below(150) == 0 {
            bad_until = s + rng.below(3 * 3600) as i64;
        }
        let li = rng.below(3) as usize;
        let canary = rng.below(4) == 0;
        let check = if canary {
            CANARIES[rng.below(2) as usize]
        } else {
            CHECKS[rng.below(3) as usize]
        };
        let t = start
            + SignedDuration::from_secs(s)
            + SignedDuration::from_millis(rng.below(1000) as i64);
        let down = net_down[li].iter().any(|&(a, b)| s >= a && s < b);
        let fail = if down {
            // A few canaries still get through: such slots are not impaired.
            (rng.below(100) < 92).then_some("connect_timeout")
        } else if canary {
            (rng.below(100) < 2).then(|| CLASSES[rng.below(4) as usize])
        } else {
            (rng.below(100) < if s < bad_until { 70 } else { 3 })
                .then(|| CLASSES[rng.below(4) as usize])
        };
        let processing = rng.below(1000) as f64 / 1000.0;
        seq[li] += 1;
        let delay = if rng.below(100) < 3 {
            SignedDuration::from_secs(600 + rng.below(6 * 3600) as i64)
        } else {
            SignedDuration::from_secs(rng.below(60) as i64)
        };
        let raw = raw(seq[li], LOCS[li], check, t, fail, processing);
        out.push(Gen {
            row: StoredResult {
                agent: format!("ag-{}", LOCS[li]),
                seq: seq[li],
                check: check.to_string(),
                location: LOCS[li].to_string(),
                started_at_ms: t.as_millisecond(),
                success: fail.is_none(),
                class: fail.map(str::to_string),
                raw,
                batch_no: 0,
            },
            commit: t + delay,
        });
    }
    out.sort_by_key(|g| g.commit);
    out
}

/// The store as the keeper sees it: rows committed so far, in batches.
#[derive(Default)]
struct Mem {
    /// In batch order.
    rows: Vec<StoredResult>,
    /// The same, parsed (for the offline evaluation).
    parsed: Vec<ProbeResult>,
    head: u64,
}

impl Mem {
    fn commit(&mut self, batch: Vec<StoredResult>) {
        self.head += 1;
        for mut r in batch {
            r.batch_no = self.head;
            self.parsed.push(serde_json::from_str(&r.raw).unwrap());
            self.rows.push(r);
        }
    }
}

impl LedgerSource for Mem {
    fn feed_head(&mut self) -> Result<u64, StoreError> {
        Ok(self.head)
    }
    fn feed_after(
        &mut self,
        cursor: u64,
        max: u64,
        f: &mut dyn FnMut(StoredResult),
    ) -> Result<u64, StoreError> {
        let hi = cursor + max;
        for r in self
            .rows
            .iter()
            .filter(|r| r.batch_no > cursor && r.batch_no <= hi)
        {
            f(r.clone());
        }
        Ok(self.head.min(hi).max(cursor))
    }
    fn results_between(
        &mut self,
        checks: &[String],
        from: i64,
        to: i64,
        f: &mut dyn FnMut(StoredResult),
    ) -> Result<(), StoreError> {
        for r in self.rows.iter().filter(|r| {
            checks.contains(&r.check) && r.started_at_ms >= from && r.started_at_ms < to
        }) {
            f(r.clone());
        }
        Ok(())
    }
}

fn offline(c: &Contract, mem: &Mem, month: Month, now: Timestamp) -> MonthReport {
    let parsed: Vec<ProbeResult> = mem
        .rows
        .iter()
        .map(|r| serde_json::from_str(&r.raw).unwrap())
        .collect();
    evaluate_month(c, month, parsed.iter().map(Observation::from_result), now)
}

fn assert_same(st: &ContractStatus, r: &MonthReport, what: &str) {
    assert_eq!(st.slots, r.slots, "{what}: slots");
    assert_eq!(
        st.availability_percent, r.availability_percent,
        "{what}: availability"
    );
    assert_eq!(st.downtime_seconds, r.downtime_seconds, "{what}: downtime");
    assert_eq!(
        st.incidents as usize,
        r.incidents.len(),
        "{what}: incidents"
    );
    assert_eq!(st.credit_percent, r.credit_percent, "{what}: credit");
    assert_eq!(
        st.error_budget_remaining, r.error_budget_remaining,
        "{what}: budget"
    );
    assert_eq!(st.objectives.len(), r.objectives.len());
    for (a, b) in st.objectives.iter().zip(&r.objectives) {
        assert_eq!(
            (a.met, a.samples),
            (b.met, b.samples),
            "{what}: {}",
            b.objective
        );
        match (a.attained, b.attained) {
            (Some(x), Some(y)) if a.kind == ObjectiveKind::Latency => {
                assert!(((x - y) / y).abs() <= 1.0 / 512.0, "{what}: p {x} vs {y}")
            }
            (x, y) => assert_eq!(x, y, "{what}: {}", b.objective),
        }
    }
}

fn monotonic(a: &SlaCounters, b: &SlaCounters) -> bool {
    b.downtime_seconds >= a.downtime_seconds
        && b.eligible_seconds >= a.eligible_seconds
        && b.maintenance_seconds >= a.maintenance_seconds
        && b.nodata_seconds >= a.nodata_seconds
        && b.incidents >= a.incidents
}

#[test]
fn ledger_equals_offline_evaluation_while_results_arrive() {
    let c = the_contract();
    let contracts = vec![c.clone()];
    let keep = Duration::from_secs(45 * 86_400);
    for seed in [3u64, 2026] {
        let gens = generate(seed, 24_000);
        let mut mem = Mem::default();
        let mut keeper = Keeper::new(contracts.clone(), LedgerData::default(), keep);
        let mut follower = LedgerData::default();
        let mut last = SlaCounters::default();
        let mut next = 0;
        let mut now = ts("2026-09-30T21:30:00Z");
        let end = ts("2026-11-01T06:00:00Z");
        let mut step = 0u64;
        let mut restarted = false;
        let mut t_round = Duration::ZERO;
        while now < end {
            // Commit what has arrived by now, in batches of up to 40.
            let mut batch = Vec::new();
            while next < gens.len() && gens[next].commit <= now {
                batch.push(gens[next].row.clone());
                next += 1;
                if batch.len() == 40 {
                    mem.commit(std::mem::take(&mut batch));
                }
            }
            if !batch.is_empty() {
                mem.commit(batch);
            }
            let t0 = std::time::Instant::now();
            let written = keeper.round(&mut mem, now).unwrap();
            t_round += t0.elapsed();
            if let Some(w) = written {
                assert_eq!(w.base, follower.version);
                let v = w.base + 1;
                keeper.written(v);
                follower.apply(&contracts, &w.rows, v, w.cursor);
            }
            assert_eq!(
                keeper.data.cursor, mem.head,
                "the keeper follows the feed to its head"
            );
            let st = follower.status(&contracts, now).remove(0);
            assert!(
                monotonic(&last, &st.counters),
                "counters stepped back at {now}"
            );
            last = st.counters;
            if step.is_multiple_of(233) {
                let month = Month::containing(now, &c.tz).unwrap();
                let r = offline(&c, &mem, month, now);
                assert_same(&st, &r, &format!("seed {seed} follower at {now}"));
                assert_same(
                    &keeper.data.status(&contracts, now).remove(0),
                    &r,
                    &format!("seed {seed} keeper at {now}"),
                );
            }
            // A restart mid-month: a new keeper from the rows alone.
            if !restarted && now >= ts("2026-10-17T09:00:00Z") {
                restarted = true;
                let mut loaded = LedgerData::default();
                loaded.apply(
                    &contracts,
                    &keeper_rows(&follower, &c),
                    follower.version,
                    follower.cursor,
                );
                keeper = Keeper::new(contracts.clone(), loaded, keep);
                keeper.load_open(&mut mem, now).unwrap();
            }
            now += SignedDuration::from_secs(60 * (4 + (step % 9) as i64));
            step += 1;
        }
        eprintln!("seed {seed}: {step} keeper rounds took {t_round:?}");
        // October is over and settled: the whole month equals the offline report.
        let oct: Month = "2026-10".parse().unwrap();
        let r = offline(&c, &mem, oct, end);
        // Rule 1a mattered: without it, the network stretches confirm more downtime.
        let naive = offline(&the_contract_without_canaries(), &mem, oct, end);
        assert!(
            naive.slots.down > r.slots.down,
            "canaries changed nothing: {:?} vs {:?}",
            naive.slots,
            r.slots
        );
        for l in &r.locations {
            assert!(l.impaired_seconds > 0, "{l:?}");
        }
        assert!(
            r.locations.iter().any(|l| !l.excluded_failures.is_empty()),
            "{:?}",
            r.locations
        );
        let m = &follower.contracts["k"].months[&oct];
        assert_eq!(m.settled as usize, m.verdicts.len(), "every slot settled");
        assert!(
            r.slots.down > 10 && r.slots.maintenance > 0 && r.slots.nodata > 0,
            "{:?}",
            r.slots
        );
        let counted: u32 = r.slots.up + r.slots.down;
        // Every eligible slot is counted; back-filled ones too (late data made some NODATA slots UP).
        assert!(
            last.eligible_seconds >= u64::from(counted) * 300,
            "{last:?} vs {:?}",
            r.slots
        );
        assert!(last.downtime_seconds >= r.downtime_seconds);
        assert!(last.incidents >= r.incidents.len() as u64 / 2);
        assert!(last.maintenance_seconds >= r.maintenance_seconds);
    }
}

/// Every row of the follower's ledger for `c`, as the store would hold them.
fn keeper_rows(data: &LedgerData, c: &Contract) -> Vec<slaprobe_collector::store::LedgerRow> {
    use slaprobe_collector::store::LedgerRow;
    let l = &data.contracts[&c.name];
    let mut rows = vec![LedgerRow {
        contract: c.name.clone(),
        month: String::new(),
        chunk: -1,
        data: serde_json::to_vec(
            &serde_json::json!({"fingerprint": l.fingerprint, "counters": l.counters}),
        )
        .unwrap(),
    }];
    for (m, ml) in &l.months {
        rows.push(LedgerRow {
            contract: c.name.clone(),
            month: m.to_string(),
            chunk: -1,
            data: serde_json::to_vec(&serde_json::json!({"settled": ml.settled, "base_batch": ml.base_batch, "latency": ml.latency})).unwrap(),
        });
        for (k, chunk) in ml
            .verdicts
            .chunks(slaprobe_collector::sla::ledger::CHUNK_SLOTS as usize)
            .enumerate()
        {
            rows.push(LedgerRow {
                contract: c.name.clone(),
                month: m.to_string(),
                chunk: k as i64,
                data: chunk.to_vec(),
            });
        }
    }
    rows
}

/// The location track behind `slaprobe_location_impaired*`: rule 1a per
/// location on a one-minute grid, settled one minute after each minute's
/// end, persisted in the ledger's rows (a follower serves the same).
#[test]
fn location_track_counts_impaired_minutes() {
    let c = the_contract();
    let contracts = vec![c.clone()];
    let mut mem = Mem::default();
    let mut keeper = Keeper::new(
        contracts.clone(),
        LedgerData::default(),
        Duration::from_secs(45 * 86_400),
    );
    let mut follower = LedgerData::default();
    let t0 = ts("2026-10-12T10:00:00Z");
    let mut seq = 0;
    let mut row = |loc: &str, check: &str, min: i64, fail: Option<&str>| {
        seq += 1;
        let t = t0 + SignedDuration::from_secs(min * 60 + 7);
        StoredResult {
            agent: format!("ag-{loc}"),
            seq,
            check: check.into(),
            location: loc.into(),
            started_at_ms: t.as_millisecond(),
            success: fail.is_none(),
            class: fail.map(str::to_string),
            raw: raw(seq, loc, check, t, fail, 0.1),
            batch_no: 0,
        }
    };
    // ams: canaries fail in minutes 0-4, pass from 5; fra: one agent_error in
    // minute 2 (a covered check), canaries pass; nyc: a canary failure and a
    // pass in the same minute (not impaired), and an agent_error of a check
    // no contract reads (not rule 1a's input).
    let mut batch = Vec::new();
    for m in 0..8 {
        batch.push(row(
            "ams",
            "cn-dns",
            m,
            (m < 5).then_some("connect_timeout"),
        ));
        batch.push(row("fra", "cn-web", m, None));
        batch.push(row("nyc", "cn-dns", m, Some("timeout")));
        batch.push(row("nyc", "cn-web", m, None));
    }
    batch.push(row("fra", "a", 2, Some("agent_error")));
    batch.push(row("nyc", "other", 3, Some("agent_error")));
    mem.commit(batch);
    let mut status_at = |min: i64, keeper: &mut Keeper, follower: &mut LedgerData| {
        let now = t0 + SignedDuration::from_secs(min * 60 + 30);
        if let Some(w) = keeper.round(&mut mem, now).unwrap() {
            let v = w.base + 1;
            keeper.written(v);
            follower.apply(&contracts, &w.rows, v, w.cursor);
        }
        assert_eq!(follower.locations, keeper.data.locations);
        let l = &follower.locations.locations;
        [
            (l["ams"].impaired, l["ams"].impaired_seconds),
            (l["fra"].impaired, l["fra"].impaired_seconds),
            (l["nyc"].impaired, l["nyc"].impaired_seconds),
        ]
    };
    // At 10:01:30 nothing has settled: minute 0 settles at 10:02.
    assert_eq!(
        status_at(1, &mut keeper, &mut follower),
        [(false, 0), (false, 0), (false, 0)]
    );
    // At 10:03:30 minutes 0 and 1 have settled; ams was impaired in both.
    assert_eq!(
        status_at(3, &mut keeper, &mut follower),
        [(true, 120), (false, 0), (false, 0)]
    );
    // At 10:04:30 minute 2 settled: fra's agent_error impaired it.
    assert_eq!(
        status_at(4, &mut keeper, &mut follower),
        [(true, 180), (true, 60), (false, 0)]
    );
    // At 10:09:30 all eight minutes settled: ams five, fra one, nyc none.
    assert_eq!(
        status_at(9, &mut keeper, &mut follower),
        [(false, 300), (false, 60), (false, 0)]
    );
}

/// The location track counts what arrives after its minute settled: an
/// agent cut off from the collector (its own network down, or the collector
/// down) spools its failing canaries and replays them later. Each impaired
/// minute counts once, across a keeper restarted from the rows alone, and a
/// late pass takes nothing back.
#[test]
fn location_track_counts_late_results_once() {
    use slaprobe_collector::sla::ledger::LOCATIONS_ROW;
    use slaprobe_collector::store::LedgerRow;
    let c = the_contract();
    let contracts = vec![c.clone()];
    let keep = Duration::from_secs(45 * 86_400);
    let mut mem = Mem::default();
    let mut keeper = Keeper::new(contracts.clone(), LedgerData::default(), keep);
    let mut follower = LedgerData::default();
    let t0 = ts("2026-10-20T22:00:00Z");
    let mut seq = 0;
    let mut row = |loc: &str, check: &str, min: i64, fail: Option<&str>| {
        seq += 1;
        let t = t0 + SignedDuration::from_secs(min * 60 + 11);
        StoredResult {
            agent: format!("ag-{loc}"),
            seq,
            check: check.into(),
            location: loc.into(),
            started_at_ms: t.as_millisecond(),
            success: fail.is_none(),
            class: fail.map(str::to_string),
            raw: raw(seq, loc, check, t, fail, 0.1),
            batch_no: 0,
        }
    };
    let round = |min: i64, keeper: &mut Keeper, mem: &mut Mem, follower: &mut LedgerData| {
        let now = t0 + SignedDuration::from_secs(min * 60 + 30);
        if let Some(w) = keeper.round(mem, now).unwrap() {
            let v = w.base + 1;
            keeper.written(v);
            follower.apply(&contracts, &w.rows, v, w.cursor);
        }
        assert_eq!(follower.locations, keeper.data.locations);
        let l = &follower.locations.locations;
        (
            l.get("ams").map(|s| (s.impaired, s.impaired_seconds)),
            l.get("nyc").map(|s| (s.impaired, s.impaired_seconds)),
        )
    };
    // Minute 0: both locations heard, nothing impaired.
    mem.commit(vec![
        row("ams", "cn-dns", 0, None),
        row("nyc", "cn-dns", 0, None),
    ]);
    assert_eq!(
        round(2, &mut keeper, &mut mem, &mut follower),
        (Some((false, 0)), Some((false, 0)))
    );
    // ams's network is down in minutes 3-8 (from 22:03 to 22:09): nothing
    // arrives from it while the keeper settles those minutes; nyc reports.
    for m in 1..12 {
        mem.commit(vec![row("nyc", "cn-dns", m, None)]);
        round(m + 2, &mut keeper, &mut mem, &mut follower);
    }
    // At 22:14 ams is back and replays its spool: minutes 1-12, canaries
    // failed in 3-8.
    let replay: Vec<StoredResult> = (1..13)
        .map(|m| {
            row(
                "ams",
                "cn-dns",
                m,
                (3..9).contains(&m).then_some("dns_error"),
            )
        })
        .collect();
    mem.commit(replay);
    assert_eq!(
        round(14, &mut keeper, &mut mem, &mut follower),
        (Some((false, 360)), Some((false, 0))),
        "the six replayed minutes count"
    );
    // A restart from the rows alone; then more of ams's spool arrives: a
    // second failing canary in minute 4 (counted already), a pass of the
    // other canary in minute 5 (nothing is taken back) and an agent_error
    // of a covered check in minute 10 (newly impaired).
    let mut rows = keeper_rows(&follower, &c);
    rows.push(LedgerRow {
        contract: LOCATIONS_ROW.to_string(),
        month: String::new(),
        chunk: -1,
        data: serde_json::to_vec(&follower.locations).unwrap(),
    });
    let mut loaded = LedgerData::default();
    loaded.apply(&contracts, &rows, follower.version, follower.cursor);
    let mut keeper = Keeper::new(contracts.clone(), loaded, keep);
    let now = t0 + SignedDuration::from_secs(15 * 60);
    keeper.load_open(&mut mem, now).unwrap();
    mem.commit(vec![
        row("ams", "cn-web", 4, Some("timeout")),
        row("ams", "cn-web", 5, None),
        row("ams", "a", 10, Some("agent_error")),
    ]);
    assert_eq!(
        round(15, &mut keeper, &mut mem, &mut follower),
        (Some((false, 420)), Some((false, 0))),
        "minute 10 counts once, minutes 4 and 5 stay counted"
    );
    // The same rows again (another keeper re-reading them) change nothing.
    assert_eq!(
        round(16, &mut keeper, &mut mem, &mut follower),
        (Some((false, 420)), Some((false, 0)))
    );
    let ams = &follower.locations.locations["ams"];
    assert_eq!(ams.counted.len(), 2, "{:?}", ams.counted);
}

/// A collector that stops before a minute settles: the results committed
/// for it before the stop count once a new keeper (from the rows alone)
/// starts, however long the collector was down.
#[test]
fn location_track_counts_minutes_committed_before_a_stop() {
    use slaprobe_collector::sla::ledger::LOCATIONS_ROW;
    use slaprobe_collector::store::LedgerRow;
    let c = the_contract();
    let contracts = vec![c.clone()];
    let keep = Duration::from_secs(45 * 86_400);
    let mut mem = Mem::default();
    let mut keeper = Keeper::new(contracts.clone(), LedgerData::default(), keep);
    let t0 = ts("2026-10-21T07:00:00Z");
    let row = |seq: u64, min: i64, fail: Option<&str>| {
        let t = t0 + SignedDuration::from_secs(min * 60 + 9);
        StoredResult {
            agent: "ag-fra".into(),
            seq,
            check: "cn-dns".into(),
            location: "fra".into(),
            started_at_ms: t.as_millisecond(),
            success: fail.is_none(),
            class: fail.map(str::to_string),
            raw: raw(seq, "fra", "cn-dns", t, fail, 0.1),
            batch_no: 0,
        }
    };
    let mut follower = LedgerData::default();
    // Minutes 0-4: fra's canary fails from minute 2 on, each committed at once.
    for m in 0..5 {
        mem.commit(vec![row(m as u64 + 1, m, (m >= 2).then_some("dns_error"))]);
        let now = t0 + SignedDuration::from_secs(m * 60 + 40);
        if let Some(w) = keeper.round(&mut mem, now).unwrap() {
            let v = w.base + 1;
            keeper.written(v);
            follower.apply(&contracts, &w.rows, v, w.cursor);
        }
    }
    // At 07:04:40 minutes 0-2 have settled: one impaired minute counted.
    assert_eq!(follower.locations.locations["fra"].impaired_seconds, 60);
    // The collector stops now and starts again 25 minutes later.
    let mut rows = keeper_rows(&follower, &c);
    rows.push(LedgerRow {
        contract: LOCATIONS_ROW.to_string(),
        month: String::new(),
        chunk: -1,
        data: serde_json::to_vec(&follower.locations).unwrap(),
    });
    let mut loaded = LedgerData::default();
    loaded.apply(&contracts, &rows, follower.version, follower.cursor);
    let mut keeper = Keeper::new(contracts.clone(), loaded, keep);
    let now = t0 + SignedDuration::from_secs(30 * 60);
    keeper.load_open(&mut mem, now).unwrap();
    if let Some(w) = keeper.round(&mut mem, now).unwrap() {
        let v = w.base + 1;
        keeper.written(v);
        follower.apply(&contracts, &w.rows, v, w.cursor);
    }
    // Minutes 3 and 4 were committed before the stop: they count too.
    let fra = &follower.locations.locations["fra"];
    assert_eq!((fra.impaired, fra.impaired_seconds), (false, 180));
}
