//! The incremental engine: same figures as the offline evaluation on random
//! data, late results, month to date, monotonic counters, retention, and a
//! scrape-sized `status` budget.

mod sla_common;

use std::time::Instant;

use jiff::Timestamp;
use sla_common::{at, contract, fail, pass, ts};
use slaprobe_collector::sla::report::SlotCounts;
use slaprobe_collector::sla::{
    Contract, Month, MonthReport, Observation, SlaEngine, evaluate_month,
};
use slaprobe_wire::FailureClass;

/// xorshift64*: a seeded generator, so failures reproduce.
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

const CLASSES: [FailureClass; 4] = [
    FailureClass::Timeout,
    FailureClass::HttpStatus,
    FailureClass::ConnectRefused,
    FailureClass::Other,
];
const MESSAGES: [&str; 3] = ["boom", "HTTP 503", "zzz"];
const LOCS: [&str; 3] = ["ams", "fra", "nyc"];
const CHECKS: [&str; 3] = ["a", "b", "c"];

/// Random results around October 2026 (Amsterdam), 5-minute slots: bursts
/// of failures, several results per slot, exact ties, some outside the month.
fn random_results(seed: u64, n: usize) -> Vec<Observation<'static>> {
    let mut rng = Rng(seed);
    let start = ts("2026-09-30T21:00:00Z"); // an hour before the month
    let span = 745 * 3600 + 2 * 3600;
    let mut out = Vec::with_capacity(n);
    let mut bad_until = 0i64;
    for _ in 0..n {
        // Coarse times (whole seconds, a few distinct values per slot) make ties common.
        let s = (rng.below(span) as i64) / 20 * 20;
        if rng.below(200) == 0 {
            bad_until = s + rng.below(4 * 3600) as i64;
        }
        let check = CHECKS[rng.below(3) as usize];
        let loc = LOCS[rng.below(3) as usize];
        let p_fail = if s < bad_until { 70 } else { 4 };
        let t = at(start, s);
        if rng.below(100) < p_fail {
            out.push(fail(
                check,
                loc,
                t,
                CLASSES[rng.below(4) as usize],
                MESSAGES[rng.below(3) as usize],
            ));
        } else {
            out.push(pass(check, loc, t, (rng.below(1000) as f64) / 1000.0));
        }
    }
    out
}

fn random_contract() -> Contract {
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
  { kind = "latency", phase = "total", percentile = 50, max = "1s" },
]
maintenance = [{ weekly = "Sun 03:00", duration = "1h" }, { start = "2026-10-14T12:02:00", duration = "47m" }]
credits = [{ below = 99.5, percent = 10 }, { below = 95, percent = 50 }]
"#,
    )
}

fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

#[test]
fn engine_equals_evaluate_month_on_random_data() {
    let c = random_contract();
    let oct: Month = "2026-10".parse().unwrap();
    for seed in [1u64, 7, 2026] {
        let obs = random_results(seed, 40_000);
        let mut engine = SlaEngine::new(vec![c.clone()], ts("2026-10-01T00:00:00Z"));
        let mut order = obs.clone();
        shuffle(&mut order, &mut Rng(seed ^ 0xdead_beef));
        // Feed in random order, asking for month-to-date figures on the way
        // (that builds and then invalidates the engine's caches).
        for (i, o) in order.iter().enumerate() {
            engine.observe(o);
            if i % 10_000 == 0 {
                engine.status(ts("2026-10-10T00:00:00Z"));
            }
        }
        for now in [
            "2026-10-12T10:17:31Z",
            "2026-10-25T01:30:00Z",
            "2026-11-01T12:00:00Z",
        ] {
            let now = ts(now);
            let offline = evaluate_month(&c, oct, obs.iter().copied(), now);
            let live = engine.report("k", oct, now).expect("October is held");
            assert_eq!(live, offline, "seed {seed} at {now}");
            if now < ts("2026-10-31T23:00:00Z") {
                let st = engine.status(now).remove(0);
                assert_same_status(&st, &offline);
            }
        }
        // A report as of an earlier instant than already asked for (the sample index scans).
        let early = ts("2026-10-05T08:00:00Z");
        assert_eq!(
            engine.report("k", oct, early).unwrap(),
            evaluate_month(&c, oct, obs.iter().copied(), early)
        );
        let full = evaluate_month(&c, oct, obs.iter().copied(), ts("2026-11-01T12:00:00Z"));
        // The random data must actually exercise the rules.
        assert!(
            full.slots.down > 10
                && full.slots.up > 1000
                && full.slots.maintenance > 0
                && full.slots.nodata > 0,
            "{:?}",
            full.slots
        );
        assert!(full.incidents.len() > 3);
        assert_eq!(
            full.slots.up + full.slots.down + full.slots.maintenance + full.slots.nodata,
            745 * 12
        );
        // Independent check of the processing p95 from the raw observations.
        let slot_start = |t: Timestamp| {
            let off = t.as_second() - full.period_start.as_second();
            full.period_start.as_second() + off / 300 * 300
        };
        let mut values: Vec<f64> = obs
            .iter()
            .filter(|o| {
                o.success && o.started_at >= full.period_start && o.started_at < full.period_end
            })
            .filter(|o| {
                !full.maintenance.iter().any(|w| {
                    let s = slot_start(o.started_at);
                    s >= w.start.as_second() && s < w.end.as_second()
                })
            })
            .filter_map(|o| o.phases[3])
            .collect();
        values.sort_by(f64::total_cmp);
        let rank = (0.95 * values.len() as f64).ceil() as usize;
        assert_eq!(
            full.objectives[1].attained,
            Some(values[rank - 1]),
            "seed {seed}"
        );
        assert_eq!(full.objectives[1].samples, Some(values.len() as u64));
    }
}

fn assert_same_status(st: &slaprobe_collector::sla::ContractStatus, r: &MonthReport) {
    assert_eq!(st.slots, r.slots);
    assert_eq!(st.availability_percent, r.availability_percent);
    assert_eq!(st.downtime_seconds, r.downtime_seconds);
    assert_eq!(st.objectives, r.objectives);
    assert_eq!(st.error_budget_remaining, r.error_budget_remaining);
    assert_eq!(st.credit_percent, r.credit_percent);
    assert_eq!(st.incidents as usize, r.incidents.len());
}

fn simple() -> Contract {
    contract(
        "name = \"k\"\nchecks = [\"a\"]\nquorum = 1\nobjectives = [{ kind = \"availability\", target = 99 }, { kind = \"latency\", phase = \"processing\", percentile = 50, max = \"1s\" }]",
    )
}

#[test]
fn late_results_update_past_slots() {
    let t0 = ts("2026-10-01T00:00:00Z");
    let mut e = SlaEngine::new(vec![simple()], t0);
    e.observe(&fail("a", "x", at(t0, 30), FailureClass::Timeout, "t"));
    let now = at(t0, 3600);
    assert_eq!(e.status(now)[0].slots.down, 1);
    // An earlier result in the same slot does not replace it.
    e.observe(&pass("a", "x", at(t0, 10), 0.1));
    assert_eq!(e.status(now)[0].slots.down, 1);
    // A later one does, an hour late.
    e.observe(&pass("a", "x", at(t0, 45), 0.2));
    let st = e.status(now).remove(0);
    assert_eq!((st.slots.up, st.slots.down), (1, 0));
    // Both PASS results are latency samples (every successful result counts).
    assert_eq!(st.objectives[1].samples, Some(2));
    assert_eq!(st.objectives[1].attained, Some(0.1));
}

#[test]
fn results_ahead_of_now_count_once_their_slot_starts() {
    let t0 = ts("2026-10-01T00:00:00Z");
    let c = simple();
    let mut e = SlaEngine::new(vec![c.clone()], t0);
    let obs = [
        pass("a", "x", at(t0, 5), 0.5),
        pass("a", "x", at(t0, 130), 0.1),
        pass("a", "x", at(t0, 190), 0.1),
    ];
    for o in &obs {
        e.observe(o);
    }
    for secs in [0, 60, 125, 185, 240] {
        let now = at(t0, secs);
        let st = e.status(now).remove(0);
        let r = evaluate_month(&c, "2026-10".parse().unwrap(), obs.iter().copied(), now);
        assert_same_status(&st, &r);
    }
    let st = e.status(at(t0, 125)).remove(0); // earlier than the clock: taken as the clock
    assert_eq!(st.objectives[1].samples, Some(3));
}

#[test]
fn counters_are_monotonic_and_count_settled_slots_once() {
    let t0 = ts("2026-10-01T00:00:00Z");
    let c = contract(
        "name = \"k\"\nchecks = [\"a\"]\nquorum = 1\nmaintenance = [{ start = \"2026-10-01T00:04:00\", duration = \"1m\" }]",
    );
    let mut e = SlaEngine::new(vec![c], t0);
    // Slots: 0 DOWN, 1 DOWN, 2 UP, 3 NODATA, 4 MAINTENANCE, 5 DOWN.
    for (s, ok) in [(0, false), (1, false), (2, true), (5, false)] {
        let o = if ok {
            pass("a", "x", at(t0, s * 60 + 1), 0.1)
        } else {
            fail("a", "x", at(t0, s * 60 + 1), FailureClass::Timeout, "t")
        };
        e.observe(&o);
    }
    let mut last = Default::default();
    let mut seen = Vec::new();
    for secs in (0..=480).step_by(30) {
        let st = e.status(at(t0, secs)).remove(0);
        let c = st.counters;
        assert!(
            c.downtime_seconds >= last_of(&last).0
                && c.eligible_seconds >= last_of(&last).1
                && c.nodata_seconds >= last_of(&last).2,
            "counters went back at {secs}s"
        );
        last = Some(c);
        seen.push((
            secs,
            c.downtime_seconds,
            c.eligible_seconds,
            c.maintenance_seconds,
            c.nodata_seconds,
            c.incidents,
        ));
    }
    // Slot i settles at (i + 2) minutes.
    let at_s = |secs: i64| *seen.iter().find(|x| x.0 == secs).unwrap();
    assert_eq!(at_s(90), (90, 0, 0, 0, 0, 0));
    assert_eq!(at_s(120), (120, 60, 60, 0, 0, 1));
    assert_eq!(at_s(180), (180, 120, 120, 0, 0, 1));
    assert_eq!(at_s(300), (300, 120, 180, 0, 60, 1));
    assert_eq!(at_s(360), (360, 120, 180, 60, 60, 1));
    assert_eq!(at_s(420), (420, 180, 240, 60, 60, 2));
    // A late result flips settled slot 0 to UP: the month's figures change, the counters do not.
    e.observe(&pass("a", "x", at(t0, 59), 0.1));
    let st = e.status(at(t0, 480)).remove(0);
    assert_eq!(st.slots.down, 2);
    assert_eq!(st.counters.downtime_seconds, 180);
    assert_eq!(st.incidents, 2);
    assert_eq!(st.counters.incidents, 2);
}

fn last_of(c: &Option<slaprobe_collector::sla::SlaCounters>) -> (u64, u64, u64) {
    c.map_or((0, 0, 0), |c| {
        (c.downtime_seconds, c.eligible_seconds, c.nodata_seconds)
    })
}

#[test]
fn down_now_is_the_latest_settled_slot() {
    let t0 = ts("2026-10-01T00:00:00Z");
    let mut e = SlaEngine::new(vec![simple()], t0);
    e.observe(&fail("a", "x", at(t0, 61), FailureClass::Timeout, "t"));
    e.observe(&pass("a", "x", at(t0, 121), 0.1));
    // At 00:02:59 the latest settled slot is slot 0 (no data); at 00:03 it is slot 1 (DOWN); at 00:04 slot 2 (UP).
    assert!(!e.status(at(t0, 179))[0].down_now);
    assert!(e.status(at(t0, 180))[0].down_now);
    assert!(!e.status(at(t0, 240))[0].down_now);

    // Across the month boundary the previous month's last slot counts.
    let t1 = ts("2026-10-31T23:59:00Z");
    e.observe(&fail("a", "x", at(t1, 1), FailureClass::Timeout, "t"));
    assert!(!e.status(ts("2026-11-01T00:00:30Z"))[0].down_now);
    assert!(e.status(ts("2026-11-01T00:01:00Z"))[0].down_now);
    assert!(!e.status(ts("2026-11-01T00:02:00Z"))[0].down_now);
}

#[test]
fn months_roll_over_and_are_kept_a_few_days() {
    let t0 = ts("2026-10-31T23:00:00Z");
    let mut e = SlaEngine::new(vec![simple()], t0);
    assert_eq!(e.replay_from(), ts("2026-10-01T00:00:00Z"));
    e.observe(&fail("a", "x", at(t0, 0), FailureClass::Timeout, "t"));
    let st = e.status(ts("2026-11-01T01:00:00Z")).remove(0);
    assert_eq!(st.month.to_string(), "2026-11");
    // October's slot settled into the counters before November's count.
    assert_eq!(st.counters.downtime_seconds, 60);
    let oct: Month = "2026-10".parse().unwrap();
    assert_eq!(e.months("k"), [oct, oct.next()]);
    assert_eq!(
        e.report("k", oct, ts("2026-11-03T00:00:00Z"))
            .unwrap()
            .slots
            .down,
        1
    );
    // A late October result is still taken while October is held.
    assert!(e.observe(&fail("a", "x", at(t0, -60), FailureClass::Timeout, "t")));
    assert_eq!(
        e.report("k", oct, ts("2026-11-03T00:00:00Z"))
            .unwrap()
            .slots
            .down,
        2
    );
    // Three days after its end October is dropped: reports come from the store.
    assert!(e.report("k", oct, ts("2026-11-04T00:00:00Z")).is_none());
    assert!(!e.observe(&fail("a", "x", at(t0, -120), FailureClass::Timeout, "t")));
    assert_eq!(e.months("k"), [oct.next()]);
    // Counters keep October's settled totals.
    assert_eq!(
        e.status(ts("2026-11-04T00:00:00Z"))[0]
            .counters
            .downtime_seconds,
        60
    );
    // Unknown contracts and checks.
    assert!(
        e.report("nope", oct.next(), ts("2026-11-04T00:00:00Z"))
            .is_none()
    );
    assert!(!e.observe(&pass("zzz", "x", ts("2026-11-04T00:00:00Z"), 0.1)));
    // Far-future results do not open months.
    assert!(!e.observe(&pass("a", "x", ts("2027-06-01T00:00:00Z"), 0.1)));
}

#[test]
fn status_is_cheap_for_ten_contracts_of_ten_checks() {
    // 10 contracts × 10 checks × 3 locations, a whole month of slots with
    // data (one result per slot and contract, rotating over checks and
    // locations, to keep this debug-build test quick), every 10th failing.
    let checks = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let contracts: Vec<Contract> = (0..10)
        .map(|i| {
            contract(&format!(
                "name = \"c{i}\"\nchecks = {checks:?}\nobjectives = [{{ kind = \"availability\", target = 99.9 }}, {{ kind = \"latency\", phase = \"processing\", percentile = 95, max = \"1s\" }}]\nmaintenance = [{{ weekly = \"Sun 03:00\", duration = \"1h\" }}]"
            ))
        })
        .collect();
    let t0 = ts("2026-10-01T00:00:00Z");
    let mut e = SlaEngine::new(contracts, t0);
    let slots = 31 * 1440;
    for s in 0..slots {
        let check = checks[s % 10];
        let loc = LOCS[s % 3];
        let t = at(t0, (s * 60 + 7) as i64);
        if s % 10 == 3 {
            e.observe(&fail(check, loc, t, FailureClass::Timeout, "t"));
        } else {
            e.observe(&pass(check, loc, t, (s % 997) as f64 / 1000.0));
        }
    }
    let now = ts("2026-10-31T23:30:00Z");
    e.status(now); // settles a month of slots once
    let mut best = f64::MAX;
    for k in 0..5 {
        // New results between scrapes, like a live collector.
        e.observe(&pass("a", "ams", at(now, k), 0.2));
        let t = Instant::now();
        let st = e.status(at(now, k * 15));
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(st.len(), 10);
        assert!(st[0].slots.up > 35_000, "{:?}", st[0].slots);
    }
    eprintln!("status for 10 contracts: {:.2} ms", best * 1000.0);
    assert!(best < 0.050, "status took {:.1} ms", best * 1000.0);
}

#[test]
fn status_of_an_empty_engine() {
    let mut e = SlaEngine::new(vec![simple()], ts("2026-10-15T00:00:00Z"));
    let st = e.status(ts("2026-10-15T00:00:00Z")).remove(0);
    assert_eq!(st.availability_percent, None);
    assert!(st.objectives.iter().all(|o| o.met && o.attained.is_none()));
    assert_eq!(
        st.slots,
        SlotCounts {
            up: 0,
            down: 0,
            maintenance: 0,
            nodata: 14 * 1440 + 1
        }
    );
    assert!(!st.down_now);
    // Serializes for /api/v1/contracts.
    let v = serde_json::to_value(&st).unwrap();
    assert_eq!(v["month"], "2026-10");
    assert_eq!(v["counters"]["downtime_seconds"], 0);
}
