//! [`Observation`]: the part of a probe result the SLA maths look at.

use jiff::Timestamp;
use slaprobe_wire::{FailureClass, ProbeResult};

use super::contract::Phase;

/// One probe result as the SLA engine sees it. Borrows from the result:
/// build one per stored result with [`Observation::from_result`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation<'a> {
    pub check: &'a str,
    pub location: &'a str,
    pub started_at: Timestamp,
    /// PASS (`true`) or FAIL.
    pub success: bool,
    /// The failure class of a FAIL (`None` when the result carried none).
    pub class: Option<FailureClass>,
    /// The failure message of a FAIL.
    pub message: Option<&'a str>,
    /// Phase values in seconds, indexed by [`Phase::index`]; `total` is the
    /// result's `duration_seconds`, the phases come from `http.phases`, the
    /// Web Vitals from `browser` (CLS unitless).
    pub phases: [Option<f64>; 11],
}

impl<'a> Observation<'a> {
    /// The observation of a stored probe result.
    pub fn from_result(r: &'a ProbeResult) -> Observation<'a> {
        let mut phases = [None; 11];
        if let Some(http) = &r.http {
            let p = &http.phases;
            phases[Phase::Resolve.index()] = p.resolve;
            phases[Phase::Connect.index()] = p.connect;
            phases[Phase::Tls.index()] = p.tls;
            phases[Phase::Processing.index()] = p.processing;
            phases[Phase::Transfer.index()] = p.transfer;
        }
        phases[Phase::Total.index()] = Some(r.duration_seconds);
        if let Some(b) = &r.browser {
            for v in Phase::VITALS {
                phases[v.index()] = b.metric(v.as_str());
            }
        }
        let (class, message) = match (&r.failure, r.success) {
            (Some(f), false) => (Some(f.class), Some(f.message.as_str())),
            _ => (None, None),
        };
        Observation {
            check: &r.check,
            location: &r.location,
            started_at: r.started_at,
            success: r.success,
            class,
            message,
            phases,
        }
    }

    /// Whether the result says nothing about the vendor: the agent's own
    /// fault (`agent_error`). It counts as no data for its location.
    pub fn is_agent_fault(&self) -> bool {
        self.class == Some(FailureClass::AgentError)
    }

    /// A phase's value, if the result measured it.
    pub fn phase(&self, p: Phase) -> Option<f64> {
        self.phases[p.index()]
    }
}

/// Compact code of a failure class: 0 = none, 1..=N = [`FailureClass::ALL`], N + 1 = other.
pub(crate) fn class_code(class: Option<FailureClass>) -> u8 {
    match class {
        None => 0,
        Some(c) => FailureClass::ALL
            .iter()
            .position(|x| *x == c)
            .map_or(FailureClass::ALL.len() as u8 + 1, |i| i as u8 + 1),
    }
}

/// Inverse of [`class_code`].
pub(crate) fn class_from_code(code: u8) -> Option<FailureClass> {
    match code {
        0 => None,
        c if (c as usize) <= FailureClass::ALL.len() => Some(FailureClass::ALL[c as usize - 1]),
        _ => Some(FailureClass::Other),
    }
}
