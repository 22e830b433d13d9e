//! DNSSEC trust anchors: the DS and DNSKEY records a validation starts from,
//! as `dnssec_trust_anchor` names them or the IANA root KSK. Parsed with the
//! config; the validator ([`crate::probe::dnssec`]) walks the chain to them.

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS};
use hickory_proto::dnssec::{PublicKey, Verifier};
use hickory_proto::rr::{Name, RData};
use hickory_proto::serialize::txt::Parser;

/// The IANA root zone KSK-2017 (key tag 20326) as its DS record, from
/// <https://data.iana.org/root-anchors/root-anchors.xml>. A unit test checks
/// it against the DNSKEY hickory ships for the same key.
pub const IANA_ROOT_ANCHOR: &str =
    ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n";

/// The keys and DS digests a validation starts from, by owner name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrustAnchor {
    /// DS records (owner lowercased).
    ds: Vec<(Name, DS)>,
    /// DNSKEY records (owner lowercased).
    keys: Vec<(Name, DNSKEY)>,
}

impl TrustAnchor {
    /// The default anchor: the IANA root KSK.
    pub fn iana_root() -> Self {
        Self::parse(IANA_ROOT_ANCHOR).expect("the built-in root anchor parses")
    }

    /// Parses zone-file text holding DS and/or DNSKEY records (owner names
    /// absolute or relative to the root; TTL and class optional; `;`
    /// comments). Other record types are an error, as is an empty anchor.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.contains("$INCLUDE") {
            return Err("$INCLUDE is not allowed in a trust anchor".into());
        }
        // The zone parser wants a TTL; anchors are usually written without.
        let input = format!("$TTL 3600\n{text}\n");
        let (_, sets) = Parser::new(input, None, Some(Name::root()))
            .parse()
            .map_err(|e| format!("not DS/DNSKEY records: {e}"))?;
        let mut anchor = Self::default();
        for set in sets.values() {
            for r in set.records_without_rrsigs() {
                let owner = r.name.to_lowercase();
                match &r.data {
                    RData::DNSSEC(DNSSECRData::DS(ds)) => anchor.ds.push((owner, ds.clone())),
                    RData::DNSSEC(DNSSECRData::DNSKEY(k)) => anchor.keys.push((owner, k.clone())),
                    other => {
                        return Err(format!(
                            "{} {}: only DS and DNSKEY records make a trust anchor",
                            r.name,
                            other.record_type()
                        ));
                    }
                }
            }
        }
        if anchor.ds.is_empty() && anchor.keys.is_empty() {
            return Err("no DS or DNSKEY record".into());
        }
        Ok(anchor)
    }

    /// Whether the anchor has records for `zone` itself.
    pub(crate) fn covers(&self, zone: &Name) -> bool {
        let zone = zone.to_lowercase();
        self.ds.iter().any(|(n, _)| *n == zone) || self.keys.iter().any(|(n, _)| *n == zone)
    }

    /// Whether some anchor is at `zone` or one of its ancestors.
    pub(crate) fn covers_any_ancestor(&self, zone: &Name) -> bool {
        let zone = zone.to_lowercase();
        self.ds
            .iter()
            .map(|(n, _)| n)
            .chain(self.keys.iter().map(|(n, _)| n))
            .any(|n| n.zone_of(&zone))
    }

    /// The keys of `keys` (the DNSKEY set of `zone`) the anchor vouches for.
    pub(crate) fn vouched<'k>(&self, zone: &Name, keys: &'k [DNSKEY]) -> Vec<&'k DNSKEY> {
        let zone_lc = zone.to_lowercase();
        let ds: Vec<&DS> = self
            .ds
            .iter()
            .filter(|(n, _)| *n == zone_lc)
            .map(|(_, d)| d)
            .collect();
        let pinned: Vec<&DNSKEY> = self
            .keys
            .iter()
            .filter(|(n, _)| *n == zone_lc)
            .map(|(_, k)| k)
            .collect();
        keys.iter()
            .filter(|k| {
                pinned.iter().any(|p| same_key(p, k)) || ds.iter().any(|d| ds_matches(d, zone, k))
            })
            .collect()
    }

    /// Key tags of the anchor's entries for `zone` (for messages).
    pub(crate) fn tags(&self, zone: &Name) -> Vec<u16> {
        let zone = zone.to_lowercase();
        let mut t: Vec<u16> = self
            .ds
            .iter()
            .filter(|(n, _)| *n == zone)
            .map(|(_, d)| d.key_tag())
            .chain(
                self.keys
                    .iter()
                    .filter(|(n, _)| *n == zone)
                    .filter_map(|(_, k)| k.calculate_key_tag().ok()),
            )
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }
}

fn same_key(a: &DNSKEY, b: &DNSKEY) -> bool {
    a.algorithm() == b.algorithm() && a.public_key().public_bytes() == b.public_key().public_bytes()
}

pub(crate) fn ds_matches(ds: &DS, zone: &Name, key: &DNSKEY) -> bool {
    key.calculate_key_tag().ok() == Some(ds.key_tag())
        && key.algorithm() == ds.algorithm()
        && ds.covers(zone, key).unwrap_or(false)
}
