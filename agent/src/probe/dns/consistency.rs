//! `consistency = true` (NS and SOA checks): whether the nameservers that
//! answered agree: every one authoritative, SOA serials within
//! `serial_lag`, one NS set. The servers that differ are marked failed and
//! named, the first few of them, in the check's message.

use std::collections::BTreeSet;

use slaprobe_wire::{DnsServerDetail, Failure, FailureClass};

use crate::config::{Consistency, RecordType};

/// Servers named in a consistency message; past this, "and N more".
const MAX_NAMED_SERVERS: usize = 5;

/// What the comparisons found: one line per kind of disagreement, and each
/// differing server (by index) with its own message.
#[derive(Debug, Default)]
struct Disagreement {
    problems: Vec<String>,
    differing: Vec<(usize, String)>,
}

/// Compares the servers that answered as expected. Marks the ones that
/// differ and returns the check's failure, naming them.
pub(super) fn compare_servers(
    c: Consistency,
    rtype: RecordType,
    servers: &mut [DnsServerDetail],
) -> Option<Failure> {
    if servers.iter().any(|s| !s.success) {
        // Some server failed on its own: that is the failure to report.
        return None;
    }
    let mut found = Disagreement::default();
    unauthoritative(servers, &mut found);
    match rtype {
        RecordType::Soa => serials_behind(c.serial_lag, servers, &mut found),
        RecordType::Ns => ns_sets_differ(servers, &mut found),
        _ => {}
    }
    if found.problems.is_empty() {
        return None;
    }
    for (i, message) in found.differing {
        let s = &mut servers[i];
        s.success = false;
        if s.failure.is_none() {
            s.failure = Some(Failure::new(FailureClass::DnsInconsistent, message));
        }
    }
    Some(Failure::new(
        FailureClass::DnsInconsistent,
        format!("nameservers disagree: {}", found.problems.join("; ")),
    ))
}

/// Servers that answered without the AA bit.
fn unauthoritative(servers: &[DnsServerDetail], found: &mut Disagreement) {
    let not_aa: Vec<usize> = (0..servers.len())
        .filter(|&i| servers[i].authoritative != Some(true))
        .collect();
    if not_aa.is_empty() {
        return;
    }
    found.problems.push(format!(
        "not authoritative (AA bit clear): {}",
        name_servers(servers, &not_aa)
    ));
    for &i in &not_aa {
        found.differing.push((
            i,
            format!("{} answered without the AA bit", servers[i].nameserver),
        ));
    }
}

/// Servers whose SOA serial is more than `serial_lag` behind the highest
/// (RFC 1982 serial arithmetic), or that gave no single SOA.
fn serials_behind(serial_lag: u32, servers: &[DnsServerDetail], found: &mut Disagreement) {
    let serials: Vec<Option<u32>> = servers
        .iter()
        .map(|s| {
            let [soa] = s.answers.as_slice() else {
                return None;
            };
            soa.split_whitespace().nth(2)?.parse().ok()
        })
        .collect();
    let known: Vec<u32> = serials.iter().flatten().copied().collect();
    // RFC 1982: the highest serial is the one no other is ahead of.
    let highest = known.iter().copied().reduce(|best, s| {
        if (s.wrapping_sub(best) as i32) > 0 {
            s
        } else {
            best
        }
    });
    let Some(highest) = highest else {
        return;
    };
    let behind: Vec<usize> = (0..servers.len())
        .filter(|&i| match serials[i] {
            Some(s) => highest.wrapping_sub(s) > serial_lag,
            None => true,
        })
        .collect();
    if behind.is_empty() {
        return;
    }
    let holder = (0..servers.len())
        .find(|&i| serials[i] == Some(highest))
        .map(|i| servers[i].nameserver.clone())
        .unwrap_or_default();
    let listed: Vec<String> = behind
        .iter()
        .take(MAX_NAMED_SERVERS)
        .map(|&i| match serials[i] {
            Some(s) => format!("{} has {s}", servers[i].nameserver),
            None => format!("{} has no single SOA", servers[i].nameserver),
        })
        .collect();
    found.problems.push(format!(
        "SOA serials differ by more than {serial_lag} from {highest} (at {holder}): {}{}",
        listed.join(", "),
        more(behind.len())
    ));
    for &i in &behind {
        found.differing.push((
            i,
            format!(
                "{} has SOA serial {}, {holder} has {highest} (serial_lag {serial_lag})",
                servers[i].nameserver,
                serials[i].map_or("none".to_string(), |s| s.to_string()),
            ),
        ));
    }
}

/// Servers whose NS set differs from the one most servers give (the first
/// on a tie).
fn ns_sets_differ(servers: &[DnsServerDetail], found: &mut Disagreement) {
    let sets: Vec<BTreeSet<&String>> = servers.iter().map(|s| s.answers.iter().collect()).collect();
    let reference = (0..sets.len())
        .max_by_key(|&i| {
            (
                sets.iter().filter(|s| **s == sets[i]).count(),
                std::cmp::Reverse(i),
            )
        })
        .map(|i| sets[i].clone());
    let Some(reference) = reference else {
        return;
    };
    let odd: Vec<usize> = (0..sets.len()).filter(|&i| sets[i] != reference).collect();
    if odd.is_empty() {
        return;
    }
    found.problems.push(format!(
        "NS sets differ from {reference:?}: {}",
        odd.iter()
            .take(MAX_NAMED_SERVERS)
            .map(|&i| format!("{} has {:?}", servers[i].nameserver, sets[i]))
            .collect::<Vec<_>>()
            .join(", ")
            + &more(odd.len())
    ));
    for &i in &odd {
        found.differing.push((
            i,
            format!(
                "{} answered NS {:?}, the others {reference:?}",
                servers[i].nameserver, sets[i]
            ),
        ));
    }
}

/// The first few servers of `idx` by name, plus how many more.
fn name_servers(servers: &[DnsServerDetail], idx: &[usize]) -> String {
    idx.iter()
        .take(MAX_NAMED_SERVERS)
        .map(|&i| servers[i].nameserver.as_str())
        .collect::<Vec<_>>()
        .join(", ")
        + &more(idx.len())
}

fn more(n: usize) -> String {
    if n > MAX_NAMED_SERVERS {
        format!(" and {} more", n - MAX_NAMED_SERVERS)
    } else {
        String::new()
    }
}
