//! Offline evaluation of a contract-month: [`MonthEvaluator`] feeds a
//! month's stored results into a [`MonthState`] (in passes, for the exact
//! latency percentiles) and asks [`build_report`] for the [`MonthReport`];
//! [`evaluate_month`] does it in one call.
//!
//! It sits above both the evaluation state (`state`) and the report
//! (`report`) so that neither needs the other's caller: `report` reads a
//! `MonthState`, `state` knows nothing of reports.

use super::contract::Contract;
use super::month::Month;
use super::observation::Observation;
use super::report::{MonthReport, build_report};
use super::select::Inconsistent;
use super::state::{Locations, MonthState};

/// Offline evaluation of one contract-month as of an instant: feed every
/// stored result of the month (any order), then pass over the same results
/// again with [`MonthEvaluator::resample`] while [`MonthEvaluator::end_pass`]
/// asks for it (the exact latency percentiles, in bounded memory: see
/// [`super::select`]; usually one more pass), then ask for the report.
#[derive(Debug)]
pub struct MonthEvaluator<'c> {
    contract: &'c Contract,
    state: MonthState,
    locations: Locations,
    now: jiff::Timestamp,
}

/// What a result is to a contract-month.
enum Covered {
    /// A result of the contract's check at this index.
    Check(usize),
    /// A canary's result (rule 1a).
    Canary,
}

impl<'c> MonthEvaluator<'c> {
    /// An empty evaluation of `month` (in the contract's zone) as of `now`
    /// (slots starting after `now` are not counted; for a past month every slot counts).
    pub fn new(contract: &'c Contract, month: Month, now: jiff::Timestamp) -> MonthEvaluator<'c> {
        MonthEvaluator {
            contract,
            state: MonthState::new(contract, month, now),
            locations: Locations::default(),
            now,
        }
    }

    /// What `obs` is to this contract-month, if anything.
    fn covered(&self, obs: &Observation<'_>) -> Option<Covered> {
        let what = match self.contract.checks.iter().position(|c| c == obs.check) {
            Some(i) => Covered::Check(i),
            None if self.contract.canaries.iter().any(|c| c == obs.check) => Covered::Canary,
            None => return None,
        };
        self.state.frame.contains(obs.started_at).then_some(what)
    }

    /// Applies one result (of a covered check or a canary; the first pass);
    /// `false` when it is not about this contract-month (another check, or
    /// started outside the period).
    pub fn observe(&mut self, obs: &Observation<'_>) -> bool {
        let Some(what) = self.covered(obs) else {
            return false;
        };
        let Some(loc) = self.locations.id(obs.location) else {
            return false;
        };
        match what {
            Covered::Check(check) => self.state.observe(check, loc, obs),
            Covered::Canary => self.state.observe_canary(loc, obs),
        }
    }

    /// Offers one result again, in a pass after the first (latency only).
    pub fn resample(&mut self, obs: &Observation<'_>) {
        if let Some(Covered::Check(check)) = self.covered(obs) {
            self.state.resample(check, obs);
        }
    }

    /// Ends a pass over the results: `Ok(true)` when the percentiles need
    /// another; [`Inconsistent`] when this pass saw other results than the
    /// one before (the store changed in between: start over).
    pub fn end_pass(&mut self) -> Result<bool, Inconsistent> {
        self.state.end_pass()
    }

    /// The report, once [`MonthEvaluator::end_pass`] said no pass is needed.
    /// `evidence` is left for the caller.
    pub fn report(&mut self) -> MonthReport {
        build_report(
            self.contract,
            &mut self.state,
            self.locations.names(),
            self.now,
        )
    }
}

/// One-shot offline evaluation: the month's report from its observations
/// (iterated once per pass), as of `now`. The SLA ledger's verdicts equal
/// this evaluation's on the same results.
pub fn evaluate_month<'a, I>(
    contract: &Contract,
    month: Month,
    observations: I,
    now: jiff::Timestamp,
) -> MonthReport
where
    I: IntoIterator<Item = Observation<'a>>,
    I::IntoIter: Clone,
{
    let all = observations.into_iter();
    let mut evaluator = MonthEvaluator::new(contract, month, now);
    for obs in all.clone() {
        evaluator.observe(&obs);
    }
    // The same observations each pass: never inconsistent.
    while evaluator.end_pass().unwrap_or(false) {
        for obs in all.clone() {
            evaluator.resample(&obs);
        }
    }
    evaluator.report()
}
