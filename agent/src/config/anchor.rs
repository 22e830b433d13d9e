//! DNSSEC trust anchors: the DS and DNSKEY records a validation starts from,
//! as `dnssec_trust_anchor` names them or the IANA root KSK. Parsed with the
//! config; the validator ([`crate::probe::dnssec`]) walks the chain to them.

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS};
use hickory_proto::dnssec::{Algorithm, PublicKey, PublicKeyBuf, Verifier};
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
    /// comments; parentheses may span lines). Other record types are an
    /// error, as is an empty anchor.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.contains("$INCLUDE") {
            return Err("$INCLUDE is not allowed in a trust anchor".into());
        }
        let mut anchor = Self::default();
        // hickory's zone parser refuses DNSKEY records ("should be
        // dynamically generated"), so those lines are read here and the
        // rest (DS) is left to it.
        let mut rest = String::new();
        for line in logical_lines(text) {
            match dnskey_line(&line)? {
                Some((owner, key)) => anchor.keys.push((owner, key)),
                None => {
                    rest.push_str(&line);
                    rest.push('\n');
                }
            }
        }
        if !rest.trim().is_empty() {
            // The zone parser wants a TTL; anchors are usually written without.
            let input = format!("$TTL 3600\n{rest}");
            let (_, sets) = Parser::new(input, None, Some(Name::root()))
                .parse()
                .map_err(|e| format!("not DS/DNSKEY records: {e}"))?;
            for set in sets.values() {
                for r in set.records_without_rrsigs() {
                    let owner = r.name.to_lowercase();
                    match &r.data {
                        RData::DNSSEC(DNSSECRData::DS(ds)) => anchor.ds.push((owner, ds.clone())),
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

/// The text's records one per line: `;` comments dropped, a record whose
/// parentheses span lines joined into one.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for line in text.lines() {
        let line = line.split(';').next().unwrap_or("");
        for c in line.chars() {
            match c {
                '(' => {
                    depth += 1;
                    cur.push(' ');
                }
                ')' => {
                    depth = depth.saturating_sub(1);
                    cur.push(' ');
                }
                c => cur.push(c),
            }
        }
        if depth == 0 {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(' ');
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// A DNSKEY record line (`owner [ttl] [class] DNSKEY flags 3 algorithm
/// base64…`), or None when the line holds another type.
fn dnskey_line(line: &str) -> Result<Option<(Name, DNSKEY)>, String> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let Some(at) = tokens
        .iter()
        .take(4)
        .position(|t| t.eq_ignore_ascii_case("DNSKEY"))
    else {
        return Ok(None);
    };
    let bad = |why: &str| format!("DNSKEY record {:?}: {why}", line.trim());
    if at == 0 || line.starts_with(char::is_whitespace) {
        return Err(bad("its owner name must start the line"));
    }
    for t in &tokens[1..at] {
        let ttl = t.bytes().all(|b| b.is_ascii_digit());
        if !ttl && !["IN", "CH", "HS"].iter().any(|c| t.eq_ignore_ascii_case(c)) {
            return Err(bad(&format!("{t:?} is neither a TTL nor a class")));
        }
    }
    let owner = match tokens[0] {
        "@" | "." => Name::root(),
        o => {
            let mut n = Name::from_ascii(o).map_err(|e| bad(&format!("owner: {e}")))?;
            n.set_fqdn(true);
            n
        }
    };
    let fields = &tokens[at + 1..];
    if fields.len() < 4 {
        return Err(bad("expected flags, protocol, algorithm and the key"));
    }
    let flags: u16 = fields[0]
        .parse()
        .map_err(|_| bad("flags are not a number"))?;
    if fields[1] != "3" {
        return Err(bad("protocol must be 3 (RFC 4034 §2.1.2)"));
    }
    let algorithm: u8 = fields[2]
        .parse()
        .map_err(|_| bad("algorithm is not a number"))?;
    let key = base64_decode(&fields[3..].concat()).ok_or_else(|| bad("the key is not base64"))?;
    let key = PublicKeyBuf::new(key, Algorithm::from_u8(algorithm));
    Ok(Some((owner.to_lowercase(), DNSKEY::with_flags(flags, key))))
}

/// Standard base64 (RFC 4648 §4, padding optional), as zone files write keys.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let body = text.trim_end_matches('=');
    if body.is_empty() || text.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes() {
        acc = acc << 6 | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_rfc4648_vectors() {
        for (want, text) in [
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                base64_decode(text).as_deref(),
                Some(want.as_bytes()),
                "{text}"
            );
        }
        assert_eq!(base64_decode("+/+/"), Some(vec![0xfb, 0xff, 0xbf]));
        for bad in ["", "Z", "Zg===", "Zm9v!", "Zm 9v"] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }
}
