//! [`Keeper`]: follows the store's feed and keeps the ledger: creating
//! months, loading open slots, applying feed rows, re-deriving touched
//! slots. Settling is in `settle`, the rows it writes in `write`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::cells::{CANARY, Cells, apply_obs, loc_id, minute_of, parse, verdict_of};
use super::data::{LedgerData, MonthLedger, fingerprint};
use super::source::LedgerSource;
use super::{CHUNK_SLOTS, FEED_BATCHES, MAX_FEED_STEPS, ROUND_BUDGET};
use crate::sla::contract::{Contract, Phase};
use crate::sla::month::Month;
use crate::sla::observation::Observation;
use crate::sla::rules::SlotState;
use crate::sla::sketch::LatencySketch;
use crate::store::{LedgerWrite, StoreError, StoredResult};

/// What one contract-month needs beyond its persisted rows (keeper only).
#[derive(Debug, Default)]
pub(super) struct Working {
    /// Open slots' cells.
    pub(super) open: BTreeMap<u32, Cells>,
    /// Settled slots a late result touched: re-derive from the store.
    pub(super) dirty: BTreeSet<u32>,
    /// Chunks whose bytes changed since the last write.
    pub(super) changed_chunks: BTreeSet<u32>,
    /// The month row changed (settled, sketch, base).
    pub(super) changed: bool,
    /// Re-derived after a contract change: settling counts nothing.
    pub(super) quiet: bool,
}

/// The keeper: follows the feed and keeps the ledger (see the module docs).
#[derive(Debug)]
pub struct Keeper {
    pub(super) contracts: Vec<Contract>,
    /// Check name → (contract index, check index in it, or [`CANARY`]: a
    /// canary is read by every contract, rule 1a).
    pub(super) by_check: HashMap<String, Vec<(usize, u16)>>,
    /// Location name → id (cells key).
    pub(super) locations: HashMap<String, u16>,
    /// Per contract, its latency objectives' (phase, max seconds).
    pub(super) latency: Vec<Vec<(Phase, f64)>>,
    /// The ledger as written (and about to be written).
    pub data: LedgerData,
    pub(super) working: HashMap<(usize, Month), Working>,
    /// Contracts whose counters or fingerprint changed.
    pub(super) changed_contracts: BTreeSet<usize>,
    /// Contracts to delete from the store before the next write.
    pub(super) reset: Vec<String>,
    /// How long after its end a month stays in memory (late results beyond are not counted live).
    pub(super) keep_after_end: Duration,
    /// Results that did not parse (logged by the caller).
    pub unparsable: u64,
    /// Every check rule 1a reads for some contract (covered checks and canaries).
    pub(super) rule_checks: Vec<String>,
    /// The canaries.
    pub(super) canaries: BTreeSet<String>,
    /// Open minutes of the location track: (minute, location) → rule 1a flags.
    pub(super) open_minutes: BTreeMap<(i64, String), u8>,
    /// The location track changed since the last write.
    pub(super) locations_changed: bool,
    /// Settled minutes per location that a late failing canary or
    /// `agent_error` may have impaired: re-decided from the store.
    pub(super) late_minutes: BTreeMap<String, BTreeSet<i64>>,
}

impl Keeper {
    /// A keeper for validated `contracts` over the ledger as loaded from the
    /// store (`data`): contracts whose definition changed are reset (their
    /// counters carry on), months are loaded as they are.
    pub fn new(contracts: Vec<Contract>, mut data: LedgerData, keep_after_end: Duration) -> Keeper {
        let mut by_check: HashMap<String, Vec<(usize, u16)>> = HashMap::new();
        for (ci, c) in contracts.iter().enumerate() {
            for (k, check) in c.checks.iter().enumerate() {
                by_check
                    .entry(check.clone())
                    .or_default()
                    .push((ci, k as u16));
            }
            for canary in &c.canaries {
                by_check
                    .entry(canary.clone())
                    .or_default()
                    .push((ci, CANARY));
            }
        }
        let mut reset = Vec::new();
        let mut changed_contracts = BTreeSet::new();
        let mut working = HashMap::new();
        for (ci, c) in contracts.iter().enumerate() {
            let fp = fingerprint(c);
            let entry = data.contracts.entry(c.name.clone()).or_default();
            if entry.fingerprint != fp {
                if !entry.fingerprint.is_empty() {
                    reset.push(c.name.clone());
                }
                // Months derived under the old definition are re-derived
                // quietly: their slots were counted already.
                for &m in entry.months.keys() {
                    working.insert(
                        (ci, m),
                        Working {
                            quiet: true,
                            ..Working::default()
                        },
                    );
                }
                entry.months.clear();
                entry.fingerprint = fp;
                changed_contracts.insert(ci);
            }
        }
        let latency = contracts
            .iter()
            .map(|c| {
                c.latency_objectives()
                    .map(|(ph, _, max)| (ph, max.as_secs_f64()))
                    .collect()
            })
            .collect();
        let canaries: BTreeSet<String> = contracts
            .iter()
            .flat_map(|c| c.canaries.iter().cloned())
            .collect();
        let rule_checks: Vec<String> = contracts
            .iter()
            .flat_map(|c| c.evidence_checks())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Keeper {
            rule_checks,
            canaries,
            open_minutes: BTreeMap::new(),
            locations_changed: false,
            late_minutes: BTreeMap::new(),
            contracts,
            by_check,
            locations: HashMap::new(),
            latency,
            data,
            working,
            changed_contracts,
            reset,
            keep_after_end,
            unparsable: 0,
        }
    }

    /// The contracts, config order.
    pub fn contracts(&self) -> &[Contract] {
        &self.contracts
    }

    /// Rebuilds the open slots' cells of every held month from the store
    /// (after start or a change of keeper). Cheap: only unsettled slots.
    pub fn load_open(
        &mut self,
        src: &mut dyn LedgerSource,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // The location track's open minutes: a few, or every minute since the
        // collector stopped (results committed before it stopped, in minutes it
        // never settled, count like any other), within the retention.
        let settled = self.data.locations.settled;
        let recent = minute_of(now.as_millisecond()) - 2;
        let from = if settled == 0 {
            recent
        } else {
            settled.max(recent - self.retention_minutes())
        } * 60_000;
        let checks = self.rule_checks.clone();
        let mut rows = Vec::new();
        src.results_between(&checks, from, now.as_millisecond() + 3_600_000, &mut |r| {
            rows.push(r)
        })?;
        for r in &rows {
            self.track_location(r);
        }
        let months: Vec<(usize, Month, u32)> = self
            .contracts
            .iter()
            .enumerate()
            .flat_map(|(ci, c)| {
                self.data
                    .contracts
                    .get(&c.name)
                    .map(|l| {
                        l.months
                            .iter()
                            .map(|(m, ml)| (ci, *m, ml.settled))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .collect();
        for (ci, month, settled) in months {
            let c = self.contracts[ci].clone();
            let n = self.data.frame(&c, month).n_slots();
            if settled >= n {
                continue;
            }
            let from = self.data.frame(&c, month).slot_start(settled);
            let to = self
                .data
                .frame(&c, month)
                .end
                .min(now + SignedDuration::from_hours(24));
            let cells = self.derive_cells(src, ci, month, from, to, None)?;
            let w = self.working.entry((ci, month)).or_default();
            for (slot, cs) in cells {
                if slot >= settled {
                    w.open.insert(slot, cs);
                }
            }
        }
        Ok(())
    }

    /// Reads the results of contract `ci` started in `[from, to)` from the
    /// store into cells per slot of `month`. With `sketch_upto = Some(h)`,
    /// results of batches up to `h` (and older, unnumbered ones) also feed
    /// the month's sketches, and later ones are left to the feed.
    pub(super) fn derive_cells(
        &mut self,
        src: &mut dyn LedgerSource,
        ci: usize,
        month: Month,
        from: Timestamp,
        to: Timestamp,
        sketch_upto: Option<u64>,
    ) -> Result<BTreeMap<u32, Cells>, StoreError> {
        let c = &self.contracts[ci];
        let frame = self.data.frame(c, month).clone();
        let latency_objectives = &self.latency[ci];
        let mut out: BTreeMap<u32, Cells> = BTreeMap::new();
        let mut sketches = vec![LatencySketch::default(); latency_objectives.len()];
        let (locations, unparsable) = (&mut self.locations, &mut self.unparsable);
        // Streamed: a month of results is never held at once.
        src.results_between(
            &c.evidence_checks(),
            from.as_millisecond(),
            to.as_millisecond(),
            &mut |row| {
                if sketch_upto.is_some_and(|h| row.batch_no > h) {
                    return;
                }
                let Some(p) = parse(&row) else {
                    *unparsable += 1;
                    return;
                };
                let obs = Observation::from_result(&p.result);
                let k = match c.checks.iter().position(|x| x == obs.check) {
                    Some(k) => k as u16,
                    None if c.canaries.iter().any(|x| x == obs.check) => CANARY,
                    None => return,
                };
                let Some((slot, offset)) = frame.slot_of(obs.started_at) else {
                    return;
                };
                let loc = loc_id(locations, obs.location);
                if k != CANARY
                    && sketch_upto.is_some()
                    && obs.success
                    && !frame.is_maintenance(slot)
                {
                    for (s, (ph, max)) in sketches.iter_mut().zip(latency_objectives) {
                        if let Some(v) = obs.phase(*ph) {
                            s.add(v, *max);
                        }
                    }
                }
                apply_obs(out.entry(slot).or_default(), k, loc, offset, &obs);
            },
        )?;
        if sketch_upto.is_some()
            && let Some(m) = self
                .data
                .contracts
                .get_mut(&self.contracts[ci].name)
                .and_then(|l| l.months.get_mut(&month))
        {
            m.latency = sketches;
        }
        Ok(out)
    }

    /// Creates `month` of contract `ci` from the store as it is now.
    pub(super) fn create_month(
        &mut self,
        src: &mut dyn LedgerSource,
        ci: usize,
        month: Month,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let c = self.contracts[ci].clone();
        let head = src.feed_head()?;
        let (start, end, m) = {
            let f = self.data.frame(&c, month);
            (f.start, f.end, MonthLedger::blank(&c, f, head))
        };
        self.data
            .contracts
            .entry(c.name.clone())
            .or_default()
            .months
            .insert(month, m);
        let to = end.min(now + SignedDuration::from_hours(24)).max(start);
        let cells = self.derive_cells(src, ci, month, start, to, Some(head))?;
        let w = self.working.entry((ci, month)).or_default();
        w.open = cells;
        w.changed = true;
        let n = self.data.frame(&c, month).n_slots();
        w.changed_chunks.extend(0..n.div_ceil(CHUNK_SLOTS));
        Ok(())
    }

    pub(super) fn month_wanted(&self, ci: usize, month: Month, now: Timestamp) -> bool {
        let (start, end) = month.period(&self.contracts[ci].tz);
        let keep = SignedDuration::try_from(self.keep_after_end).unwrap_or(SignedDuration::MAX);
        end.checked_add(keep).is_ok_and(|t| t > now)
            && start <= now + SignedDuration::from_hours(24)
    }

    /// One round as of `now`: follow the feed to its head, settle what is
    /// due, re-derive late slots; returns what to write (`None`: nothing
    /// changed). Call [`Keeper::written`] after the write succeeded.
    pub fn round(
        &mut self,
        src: &mut dyn LedgerSource,
        now: Timestamp,
    ) -> Result<Option<LedgerWrite>, StoreError> {
        // The current month of every contract exists.
        for ci in 0..self.contracts.len() {
            let c = &self.contracts[ci];
            if let Some(month) = Month::containing(now, &c.tz)
                && !self
                    .data
                    .contracts
                    .get(&c.name)
                    .is_some_and(|l| l.months.contains_key(&month))
            {
                self.create_month(src, ci, month, now)?;
            }
        }
        let start_cursor = self.data.cursor;
        // A backlog is written in parts, about every ROUND_BUDGET of work, so
        // the served figures (and the persisted cursor) move while catching up.
        let began = std::time::Instant::now();
        for _ in 0..MAX_FEED_STEPS {
            if began.elapsed() > ROUND_BUDGET {
                break;
            }
            let mut rows = Vec::new();
            let cursor = src.feed_after(self.data.cursor, FEED_BATCHES, &mut |r| rows.push(r))?;
            for row in &rows {
                self.apply_feed_row(src, row, now)?;
            }
            let moved = cursor != self.data.cursor;
            self.data.cursor = cursor;
            if !moved {
                break;
            }
        }
        self.settle(now);
        self.settle_minutes(now);
        self.rederive_minutes(src)?;
        self.rederive(src, now)?;
        self.drop_old_months(now);
        let write = self.collect_write();
        if write.rows.is_empty()
            && write.reset_contracts.is_empty()
            && self.data.cursor == start_cursor
        {
            return Ok(None);
        }
        Ok(Some(write))
    }

    pub(super) fn apply_feed_row(
        &mut self,
        src: &mut dyn LedgerSource,
        row: &StoredResult,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.track_location(row);
        let Some(targets) = self.by_check.get(&row.check) else {
            return Ok(());
        };
        let targets = targets.clone();
        let Some(p) = parse(row) else {
            self.unparsable += 1;
            return Ok(());
        };
        let obs = Observation::from_result(&p.result);
        let loc = loc_id(&mut self.locations, obs.location);
        for (ci, k) in targets {
            let c = &self.contracts[ci];
            let Some(month) = Month::containing(obs.started_at, &c.tz) else {
                continue;
            };
            if !self.month_wanted(ci, month, now) {
                continue;
            }
            if !self
                .data
                .contracts
                .get(&c.name)
                .is_some_and(|l| l.months.contains_key(&month))
            {
                // The pass that creates the month reads this row too.
                self.create_month(src, ci, month, now)?;
                continue;
            }
            let c = &self.contracts[ci];
            let f = self.data.frame(c, month);
            let Some((slot, offset)) = f.slot_of(obs.started_at) else {
                continue;
            };
            let maint = f.is_maintenance(slot);
            let Some(m) = self
                .data
                .contracts
                .get_mut(&c.name)
                .and_then(|l| l.months.get_mut(&month))
            else {
                continue;
            };
            if p.batch_no != 0 && p.batch_no <= m.base_batch {
                continue;
            }
            if k != CANARY && obs.success && !maint {
                for (s, (ph, max)) in m.latency.iter_mut().zip(&self.latency[ci]) {
                    if let Some(v) = obs.phase(*ph) {
                        s.add(v, *max);
                    }
                }
            }
            let settled = slot < m.settled;
            let w = self.working.entry((ci, month)).or_default();
            w.changed = true;
            if settled {
                // A late result (a canary's too: it may impair the location) re-derives the slot.
                w.dirty.insert(slot);
            } else {
                apply_obs(w.open.entry(slot).or_default(), k, loc, offset, &obs);
            }
        }
        Ok(())
    }

    /// Re-derives the settled slots late results touched, from the store.
    pub(super) fn rederive(
        &mut self,
        src: &mut dyn LedgerSource,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let dirty: Vec<((usize, Month), Vec<u32>)> = self
            .working
            .iter_mut()
            .filter(|(_, w)| !w.dirty.is_empty())
            .map(|(k, w)| (*k, std::mem::take(&mut w.dirty).into_iter().collect()))
            .collect();
        for ((ci, month), slots) in dirty {
            let c = self.contracts[ci].clone();
            // Runs of consecutive slots, one store read each.
            let mut i = 0;
            while i < slots.len() {
                let mut j = i;
                while j + 1 < slots.len() && slots[j + 1] <= slots[j] + 1 + 8 {
                    j += 1;
                }
                let (from, to) = {
                    let f = self.data.frame(&c, month);
                    (f.slot_start(slots[i]), f.slot_end(slots[j]))
                };
                let cells = self.derive_cells(src, ci, month, from, to, None)?;
                for &s in &slots[i..=j] {
                    let slot_state = if self.data.frame(&c, month).is_maintenance(s) {
                        SlotState::Maintenance
                    } else {
                        cells.get(&s).map_or(SlotState::NoData, |cs| {
                            verdict_of(cs, c.checks.len(), c.quorum)
                        })
                    };
                    self.set_state(ci, month, s, slot_state, false, false);
                }
                i = j + 1;
            }
            let _ = now;
        }
        Ok(())
    }

    pub(super) fn drop_old_months(&mut self, now: Timestamp) {
        for (ci, c) in self.contracts.iter().enumerate() {
            let keep = SignedDuration::try_from(self.keep_after_end).unwrap_or(SignedDuration::MAX);
            if let Some(l) = self.data.contracts.get_mut(&c.name) {
                l.months.retain(|m, ml| {
                    let (_, end) = m.period(&c.tz);
                    let keep_it = end.checked_add(keep).is_ok_and(|t| t > now)
                        || ml.settled < ml.verdicts.len() as u32;
                    if !keep_it {
                        self.working.remove(&(ci, *m));
                    }
                    keep_it
                });
            }
        }
        self.data.frames.retain(|(name, m), _| {
            self.data
                .contracts
                .get(name)
                .is_some_and(|l| l.months.contains_key(m))
        });
    }

    /// The write made of the last round's changes landed as `version`.
    pub fn written(&mut self, version: u64) {
        self.data.version = version;
    }
}
