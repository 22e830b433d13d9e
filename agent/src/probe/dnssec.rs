//! DNSSEC validation of one nameserver's answer (RFC 4033-4035): from a
//! trust anchor (DS or DNSKEY records) through DS and DNSKEY sets down to the
//! RRSIGs of the answer, with hickory-proto's record types and its ring
//! signature verification.
//!
//! # Where the chain's records come from
//! The answer's own RRSIGs name the zone that signed it (the signer name).
//! That zone's DNSKEY set is asked of the same nameserver (it serves the
//! zone). When the trust anchor sits above the zone (the default: the root),
//! each zone cut's DS set and the parents' DNSKEY sets are asked of the
//! nameserver first and, when it has no such records (an authoritative
//! server of the child only answers NODATA for the child's DS), of the
//! system resolvers (`/etc/resolv.conf`). Where a record comes from does not
//! matter for trust: every set is verified against keys proven from the
//! anchor.
//!
//! # Verdicts
//! - `secure`: every RRset of the answer has a signature that verifies with
//!   a key proven from the anchor, and every signature relied on is inside its
//!   validity window.
//! - `insecure`: the answer carries no RRSIG, or the chain meets a zone cut
//!   without DS (an unsigned delegation), or no anchor covers the zone.
//! - `bogus`: a signature that does not verify, is expired or not yet valid;
//!   no DNSKEY for the key tag a signature names; no DNSKEY matching the
//!   anchor's or the parent's DS.
//!
//! Denial of existence (NSEC/NSEC3) is not validated: an answer without
//! records already fails the check (`dns_rcode` or `dns_answer_mismatch`).
//!
//! The validation is pure over a [`Fetch`] (the records source) and `now`,
//! so it is tested with fixed clocks and in-memory zones as well as against
//! knotd.

use std::collections::BTreeMap;
use std::future::Future;

use hickory_proto::dnssec::Verifier;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use slaprobe_wire::{DnssecDetail, DnssecStatus, Timestamp};

use crate::config::anchor::ds_matches;
pub use crate::config::anchor::{IANA_ROOT_ANCHOR, TrustAnchor};

/// Most zone cuts walked from the answer up to the anchor (a name has at
/// most 127 labels; real chains have 2-5 cuts). Bounds a hostile chain.
const MAX_CHAIN: usize = 16;

/// Signature checks are bounded as validating resolvers bound them since
/// KeyTrap (CVE-2023-50387): a hostile zone with many colliding key tags
/// and signatures must not cost more than a few dozen verifications.
/// Most RRSIGs tried per RRset:
const MAX_SIGS_PER_SET: usize = 8;
/// Most keys tried for one RRSIG (keys sharing its tag and algorithm):
const MAX_KEYS_PER_SIG: usize = 4;
/// Most RRsets of one answer validated.
const MAX_RRSETS: usize = 32;

/// Where the validator gets the records it needs beyond the answer.
pub trait Fetch {
    /// The records (RRSIGs included) of `name`/`rtype`, as answered for a
    /// query with the DO bit set. Empty when there are none; `Err` with a
    /// message when no server could be asked.
    fn fetch(
        &self,
        name: &Name,
        rtype: RecordType,
    ) -> impl Future<Output = Result<Vec<Record>, String>> + Send;
}

/// Why the validation stopped short of secure.
#[derive(Debug, Clone, PartialEq)]
struct NotSecure {
    status: DnssecStatus,
    reason: String,
}

fn bogus(reason: String) -> NotSecure {
    NotSecure {
        status: DnssecStatus::Bogus,
        reason,
    }
}

fn insecure(reason: String) -> NotSecure {
    NotSecure {
        status: DnssecStatus::Insecure,
        reason,
    }
}

/// Validates the RRsets of `answers` (one response's answer section, RRSIGs
/// included) at unix time `now`.
pub async fn validate(
    answers: &[Record],
    anchor: &TrustAnchor,
    fetch: &impl Fetch,
    now: u32,
) -> DnssecDetail {
    let mut v = Validation {
        anchor,
        fetch,
        now,
        earliest: None,
        zones: BTreeMap::new(),
    };
    match v.answer(answers).await {
        Ok(()) => DnssecDetail {
            status: DnssecStatus::Secure,
            reason: None,
            rrsig_expires_at: v.earliest.and_then(|e| Timestamp::from_second(e).ok()),
        },
        Err(n) => DnssecDetail {
            status: n.status,
            reason: Some(n.reason),
            rrsig_expires_at: v.earliest.and_then(|e| Timestamp::from_second(e).ok()),
        },
    }
}

struct Validation<'a, F> {
    anchor: &'a TrustAnchor,
    fetch: &'a F,
    now: u32,
    /// Earliest expiration (unix seconds) of the signatures relied on.
    earliest: Option<i64>,
    /// Zones whose keys are proven (lowercased apex → keys).
    zones: BTreeMap<Name, Vec<DNSKEY>>,
}

impl<F: Fetch> Validation<'_, F> {
    async fn answer(&mut self, answers: &[Record]) -> Result<(), NotSecure> {
        let sets = rrsets(answers);
        if sets.is_empty() {
            return Err(insecure("no records in the answer to validate".into()));
        }
        if sets.len() > MAX_RRSETS {
            return Err(bogus(format!(
                "{} RRsets in the answer, more than the {MAX_RRSETS} validated",
                sets.len()
            )));
        }
        for ((name, rtype), records) in &sets {
            let sigs = sigs_for(answers, name, *rtype);
            let what = format!("{} {rtype}", display(name));
            let Some(signer) = sigs.first().map(|s| s.input().signer_name.clone()) else {
                return Err(insecure(format!("{what} is not signed (no RRSIG)")));
            };
            if !signer.zone_of(name) {
                return Err(bogus(format!(
                    "{what} is signed by {}, which is not its zone",
                    display(&signer)
                )));
            }
            let keys = self.zone_keys(&signer).await?;
            self.verify_set(&what, name, records, &sigs, &keys)?;
        }
        Ok(())
    }

    /// The proven keys of `zone` (its DNSKEY set, verified from the anchor).
    async fn zone_keys(&mut self, zone: &Name) -> Result<Vec<DNSKEY>, NotSecure> {
        // Walk up first (iteratively, bounded), then prove downwards.
        let mut path = vec![zone.to_lowercase()];
        // The DS set fetched for path[i] on the way up (path[i + 1] signed it).
        let mut ds_sets: Vec<(Vec<Record>, Vec<RRSIG>)> = Vec::new();
        loop {
            let z = path.last().expect("path is never empty");
            if self.zones.contains_key(z) || self.anchor.covers(z) {
                break;
            }
            if !self.anchor.covers_any_ancestor(z) {
                return Err(insecure(format!(
                    "no trust anchor at or above {}",
                    display(zone)
                )));
            }
            if path.len() > MAX_CHAIN {
                return Err(bogus(format!(
                    "chain of trust for {} longer than {MAX_CHAIN} zone cuts",
                    display(zone)
                )));
            }
            // The parent zone is known from the DS set's signer; the set is
            // proven on the way down.
            let ds = self.fetch_rrset(z, RecordType::DS).await?;
            let Some(signer) = ds.1.first().map(|s| s.input().signer_name.to_lowercase()) else {
                if ds.0.is_empty() {
                    return Err(insecure(format!(
                        "no DS for {} (an unsigned delegation)",
                        display(z)
                    )));
                }
                return Err(insecure(format!(
                    "the DS set of {} is not signed",
                    display(z)
                )));
            };
            if !signer.zone_of(z) || signer == *z {
                return Err(bogus(format!(
                    "the DS set of {} is signed by {}, not by a parent zone",
                    display(z),
                    display(&signer)
                )));
            }
            ds_sets.push(ds);
            path.push(signer);
        }
        // path: [zone, ..., top]; top is proven or anchored.
        let top = path.last().expect("path is never empty").clone();
        if !self.zones.contains_key(&top) {
            let keys = self.dnskeys(&top, None).await?;
            self.zones.insert(top.clone(), keys);
        }
        for i in (0..path.len() - 1).rev() {
            let child = path[i].clone();
            if self.zones.contains_key(&child) {
                continue;
            }
            let parent_keys = self.zones[&path[i + 1]].clone();
            let (ds, sigs) = ds_sets[i].clone();
            let what = format!("{} DS", display(&child));
            self.verify_set(&what, &child, &ds, &sigs, &parent_keys)?;
            let ds: Vec<DS> = ds
                .iter()
                .filter_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::DS(d)) => Some(d.clone()),
                    _ => None,
                })
                .collect();
            let keys = self.dnskeys(&child, Some(&ds)).await?;
            self.zones.insert(child, keys);
        }
        Ok(self.zones[&zone.to_lowercase()].clone())
    }

    /// Fetches and proves the DNSKEY set of `zone`: its entry keys are those
    /// the anchor vouches for (`ds` None) or those matching `ds`.
    async fn dnskeys(&mut self, zone: &Name, ds: Option<&[DS]>) -> Result<Vec<DNSKEY>, NotSecure> {
        let (records, sigs) = self.fetch_rrset(zone, RecordType::DNSKEY).await?;
        let keys: Vec<DNSKEY> = records
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
                _ => None,
            })
            .collect();
        if keys.is_empty() {
            return Err(bogus(match ds {
                None => format!(
                    "no DNSKEY for {} (the trust anchor has key tags {:?})",
                    display(zone),
                    self.anchor.tags(zone)
                ),
                Some(ds) => format!(
                    "no DNSKEY for {} though its parent has DS key tags {:?}",
                    display(zone),
                    tags_of(ds)
                ),
            }));
        }
        let entry: Vec<DNSKEY> = match ds {
            None => self
                .anchor
                .vouched(zone, &keys)
                .into_iter()
                .cloned()
                .collect(),
            Some(ds) => keys
                .iter()
                .filter(|k| ds.iter().any(|d| ds_matches(d, zone, k)))
                .cloned()
                .collect(),
        };
        if entry.is_empty() {
            let have: Vec<u16> = keys
                .iter()
                .filter_map(|k| k.calculate_key_tag().ok())
                .collect();
            return Err(bogus(match ds {
                None => format!(
                    "no DNSKEY of {} matches the trust anchor (anchor key tags {:?}, zone key tags {have:?})",
                    display(zone),
                    self.anchor.tags(zone)
                ),
                Some(ds) => format!(
                    "no DNSKEY of {} matches its DS (DS key tags {:?}, zone key tags {have:?})",
                    display(zone),
                    tags_of(ds)
                ),
            }));
        }
        let what = format!("{} DNSKEY", display(zone));
        self.verify_set(&what, zone, &records, &sigs, &entry)?;
        // Every zone key of a proven set may sign the zone's data.
        Ok(keys
            .into_iter()
            .filter(|k| k.zone_key() && !k.revoke())
            .collect())
    }

    /// The records of `name`/`rtype` and the RRSIGs covering them.
    async fn fetch_rrset(
        &self,
        name: &Name,
        rtype: RecordType,
    ) -> Result<(Vec<Record>, Vec<RRSIG>), NotSecure> {
        let records = self.fetch.fetch(name, rtype).await.map_err(|e| {
            bogus(format!(
                "cannot get {} {rtype} to build the chain of trust: {e}",
                display(name)
            ))
        })?;
        let sigs = sigs_for(&records, name, rtype);
        let set = records
            .into_iter()
            .filter(|r| r.record_type() == rtype && r.name.to_lowercase() == name.to_lowercase())
            .collect();
        Ok((set, sigs))
    }

    /// Checks that one of `sigs` over `records` verifies with one of `keys`
    /// and is inside its validity window; records its expiration.
    fn verify_set(
        &mut self,
        what: &str,
        name: &Name,
        records: &[Record],
        sigs: &[RRSIG],
        keys: &[DNSKEY],
    ) -> Result<(), NotSecure> {
        if sigs.is_empty() {
            return Err(bogus(format!("{what} has no RRSIG")));
        }
        let mut problems = Vec::new();
        // The latest expiration among the set's verified but lapsed RRSIGs.
        let mut lapsed: Option<i64> = None;
        if sigs.len() > MAX_SIGS_PER_SET {
            problems.push(format!(
                "{} RRSIGs, only the first {MAX_SIGS_PER_SET} tried",
                sigs.len()
            ));
        }
        for sig in sigs.iter().take(MAX_SIGS_PER_SET) {
            let input = sig.input();
            let (inception, expiration) = (input.sig_inception.get(), input.sig_expiration.get());
            let candidates: Vec<&DNSKEY> = keys
                .iter()
                .filter(|k| {
                    k.algorithm() == input.algorithm
                        && k.calculate_key_tag().ok() == Some(input.key_tag)
                })
                .take(MAX_KEYS_PER_SIG)
                .collect();
            if candidates.is_empty() {
                problems.push(format!(
                    "no DNSKEY of {} with key tag {} ({})",
                    display(&input.signer_name),
                    input.key_tag,
                    input.algorithm
                ));
                continue;
            }
            // RFC 4034 §3.1.5: serial number arithmetic on 32-bit seconds.
            if (self.now.wrapping_sub(inception) as i32) < 0 {
                problems.push(format!(
                    "RRSIG (key tag {}) not valid before {}",
                    input.key_tag,
                    fmt_time(inception, self.now)
                ));
                continue;
            }
            if (expiration.wrapping_sub(self.now) as i32) < 0 {
                problems.push(format!(
                    "RRSIG (key tag {}) expired {}",
                    input.key_tag,
                    fmt_time(expiration, self.now)
                ));
                // A genuine signature that has lapsed is what the expiry
                // metric and its alert exist for: keep its (past) expiration,
                // but only once it verifies, so a forged RRSIG cannot set it.
                let genuine = candidates.iter().any(|k| {
                    k.verify_rrsig(name, DNSClass::IN, sig, records.iter())
                        .is_ok()
                });
                if genuine {
                    let exp = unix_of(expiration, self.now);
                    lapsed = Some(lapsed.map_or(exp, |l: i64| l.max(exp)));
                }
                continue;
            }
            let verified = candidates.iter().any(|k| {
                k.verify_rrsig(name, DNSClass::IN, sig, records.iter())
                    .is_ok()
            });
            if verified {
                let exp = unix_of(expiration, self.now);
                self.earliest = Some(self.earliest.map_or(exp, |e| e.min(exp)));
                return Ok(());
            }
            problems.push(format!("RRSIG (key tag {}) does not verify", input.key_tag));
        }
        if let Some(exp) = lapsed {
            self.earliest = Some(self.earliest.map_or(exp, |e| e.min(exp)));
        }
        Err(bogus(format!("{what}: {}", problems.join("; "))))
    }
}

/// The RRsets of `records` (RRSIGs excluded), keyed by (lowercased name, type).
fn rrsets(records: &[Record]) -> BTreeMap<(Name, RecordType), Vec<Record>> {
    let mut sets: BTreeMap<(Name, RecordType), Vec<Record>> = BTreeMap::new();
    for r in records {
        if r.record_type() == RecordType::RRSIG || r.record_type() == RecordType::OPT {
            continue;
        }
        sets.entry((r.name.to_lowercase(), r.record_type()))
            .or_default()
            .push(r.clone());
    }
    sets
}

/// The RRSIGs among `records` that cover `name`/`rtype`.
fn sigs_for(records: &[Record], name: &Name, rtype: RecordType) -> Vec<RRSIG> {
    let name = name.to_lowercase();
    records
        .iter()
        .filter(|r| r.name.to_lowercase() == name)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == rtype => {
                Some(s.clone())
            }
            _ => None,
        })
        .collect()
}

fn tags_of(ds: &[DS]) -> Vec<u16> {
    let mut t: Vec<u16> = ds.iter().map(DS::key_tag).collect();
    t.sort_unstable();
    t.dedup();
    t
}

/// A 32-bit RRSIG time as unix seconds: the value nearest `now` (RFC 4034
/// times wrap every 136 years).
fn unix_of(t: u32, now: u32) -> i64 {
    i64::from(now) + i64::from(t.wrapping_sub(now) as i32)
}

fn fmt_time(t: u32, now: u32) -> String {
    Timestamp::from_second(unix_of(t, now))
        .map(|ts| ts.to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// A name lowercased, without its trailing dot (the root stays `.`).
fn display(name: &Name) -> String {
    let s = name.to_lowercase().to_string();
    match s.strip_suffix('.') {
        Some("") | None => s,
        Some(t) => t.to_string(),
    }
}

/// The DNSKEY hickory ships for the root KSK-2017 (tests the DS above).
#[cfg(test)]
fn hickory_root_ksk() -> DNSKEY {
    use hickory_proto::dnssec::PublicKey;
    let trust = hickory_proto::dnssec::TrustAnchors::default();
    let key = trust.get(0).expect("hickory ships the root KSK");
    DNSKEY::new(
        true,
        true,
        false,
        hickory_proto::dnssec::PublicKeyBuf::new(
            key.public_bytes().to_vec(),
            hickory_proto::dnssec::Algorithm::RSASHA256,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn builtin_root_anchor_is_ksk_20326() {
        let anchor = TrustAnchor::iana_root();
        let ksk = hickory_root_ksk();
        assert_eq!(ksk.calculate_key_tag().unwrap(), 20326);
        assert_eq!(
            anchor
                .vouched(&Name::root(), std::slice::from_ref(&ksk))
                .len(),
            1
        );
        assert!(anchor.covers_any_ancestor(&Name::from_str("www.acme.example.").unwrap()));
    }

    #[test]
    fn anchor_parsing() {
        let a = TrustAnchor::parse(
            "; comment\nacme.test. 3600 IN DS 12345 13 2 0000000000000000000000000000000000000000000000000000000000000000\nother.test IN DS 1 13 2 00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF\n",
        )
        .unwrap();
        assert!(a.covers(&Name::from_str("ACME.test.").unwrap()));
        assert!(a.covers(&Name::from_str("other.test.").unwrap()));
        assert!(!a.covers_any_ancestor(&Name::from_str("example.").unwrap()));
        assert!(TrustAnchor::parse("").is_err());
        assert!(TrustAnchor::parse("acme.test. IN A 192.0.2.1").is_err());
        assert!(TrustAnchor::parse("this is not a zone").is_err());
        assert!(TrustAnchor::parse("$INCLUDE /etc/passwd").is_err());
    }

    #[test]
    fn rrsig_times_wrap() {
        assert_eq!(unix_of(10, 5), 10);
        assert_eq!(unix_of(u32::MAX, 5), -1);
        // In 2106 the 32-bit field wraps; times near now stay near now.
        assert_eq!(unix_of(3, u32::MAX - 2), i64::from(u32::MAX) + 4);
    }
}
