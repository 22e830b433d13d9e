//! The text of DNS answers: rcode mnemonics, each record type's canonical
//! form (the table in the module doc of [`super`]), and expectations brought
//! to that form.

use std::net::IpAddr;

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType as WireType};

use crate::config::RecordType;

/// The rcode's mnemonic as written by dig (`NOERROR`, `NXDOMAIN`, …);
/// unassigned codes as `RCODE<n>`.
pub fn rcode_name(rcode: ResponseCode) -> String {
    let s = match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        ResponseCode::BADVERS => "BADVERS",
        ResponseCode::BADSIG => "BADSIG",
        ResponseCode::BADKEY => "BADKEY",
        ResponseCode::BADTIME => "BADTIME",
        ResponseCode::BADMODE => "BADMODE",
        ResponseCode::BADNAME => "BADNAME",
        ResponseCode::BADALG => "BADALG",
        ResponseCode::BADTRUNC => "BADTRUNC",
        ResponseCode::BADCOOKIE => "BADCOOKIE",
        other => return format!("RCODE{}", u16::from(other)),
    };
    s.to_string()
}

pub(super) fn wire_type(t: RecordType) -> WireType {
    match t {
        RecordType::A => WireType::A,
        RecordType::Aaaa => WireType::AAAA,
        RecordType::Cname => WireType::CNAME,
        RecordType::Mx => WireType::MX,
        RecordType::Txt => WireType::TXT,
        RecordType::Ns => WireType::NS,
        RecordType::Soa => WireType::SOA,
        RecordType::Caa => WireType::CAA,
    }
}

/// A name lowercased, without its trailing dot (the root stays `.`).
pub(super) fn display_name(name: &Name) -> String {
    let s = name.to_lowercase().to_string();
    match s.strip_suffix('.') {
        Some("") | None => s,
        Some(t) => t.to_string(),
    }
}

/// The canonical text of one record's data (see the module doc).
pub(super) fn answer_text(data: &RData) -> String {
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(n) => display_name(&n.0),
        RData::NS(n) => display_name(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference, display_name(&mx.exchange)),
        RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s))
            .collect::<String>()
            .trim()
            .to_string(),
        RData::SOA(s) => format!(
            "{} {} {} {} {} {} {}",
            display_name(&s.mname),
            display_name(&s.rname),
            s.serial,
            s.refresh,
            s.retry,
            s.expire,
            s.minimum
        ),
        RData::CAA(c) => format!(
            "{} {} \"{}\"",
            c.flags(),
            c.tag.to_ascii_lowercase(),
            String::from_utf8_lossy(&c.value)
        ),
        other => other.to_string(),
    }
}

/// Brings an answer written by a user (`expect_answers`) to the form the
/// probe reports for `rtype`, so the two compare equal when they mean the same
/// record. Text that does not parse as the type is kept (trimmed) and will
/// simply not match.
pub fn canonical_answer(rtype: RecordType, text: &str) -> String {
    let text = text.trim();
    let name = |s: &str| -> String {
        let s = s.to_lowercase();
        match s.strip_suffix('.') {
            Some("") | None => s,
            Some(t) => t.to_string(),
        }
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let canon = match rtype {
        RecordType::A | RecordType::Aaaa => text.parse::<IpAddr>().ok().map(|ip| ip.to_string()),
        RecordType::Cname | RecordType::Ns => (words.len() == 1).then(|| name(text)),
        RecordType::Mx => match words.as_slice() {
            [pref, exchange] => pref
                .parse::<u16>()
                .ok()
                .map(|p| format!("{p} {}", name(exchange))),
            _ => None,
        },
        RecordType::Txt => None,
        RecordType::Soa => match words.as_slice() {
            [mname, rname, serial, refresh, retry, expire, minimum] => (|| {
                Some(format!(
                    "{} {} {} {} {} {} {}",
                    name(mname),
                    name(rname),
                    serial.parse::<u32>().ok()?,
                    refresh.parse::<i32>().ok()?,
                    retry.parse::<i32>().ok()?,
                    expire.parse::<i32>().ok()?,
                    minimum.parse::<u32>().ok()?
                ))
            })(),
            _ => None,
        },
        RecordType::Caa => {
            // `flags tag value`, the value quoted or not (it may hold spaces).
            let mut parts = text.splitn(2, char::is_whitespace);
            let flags = parts.next().and_then(|f| f.parse::<u8>().ok());
            let rest = parts.next().map(str::trim_start).unwrap_or("");
            let mut parts = rest.splitn(2, char::is_whitespace);
            let tag = parts.next().unwrap_or("");
            let value = parts.next().map(str::trim).unwrap_or("");
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            match flags {
                Some(f) if !tag.is_empty() => {
                    Some(format!("{f} {} \"{value}\"", tag.to_ascii_lowercase()))
                }
                _ => None,
            }
        }
    };
    canon.unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        use RecordType::*;
        let cases = [
            (A, " 192.0.2.10 ", "192.0.2.10"),
            (Aaaa, "2001:DB8:0::10", "2001:db8::10"),
            (Cname, "WWW.Acme.Example.", "www.acme.example"),
            (Ns, "ns1.acme.example", "ns1.acme.example"),
            (Mx, "10   Mail.Acme.Example.", "10 mail.acme.example"),
            (Txt, "v=spf1 -all", "v=spf1 -all"),
            (Txt, "Ends with dot.", "Ends with dot."),
            (
                Soa,
                "NS1.x. host.x. 01 3600 600 86400 60",
                "ns1.x host.x 1 3600 600 86400 60",
            ),
            (
                Caa,
                "0 ISSUE letsencrypt.org",
                "0 issue \"letsencrypt.org\"",
            ),
            (
                Caa,
                "128 iodef \"mailto:a@b.example\"",
                "128 iodef \"mailto:a@b.example\"",
            ),
            (A, "not-an-ip", "not-an-ip"),
        ];
        for (t, input, want) in cases {
            assert_eq!(canonical_answer(t, input), want, "{t:?} {input:?}");
            // Idempotent: the probe's own answers pass through it unchanged.
            assert_eq!(canonical_answer(t, want), want);
        }
    }

    #[test]
    fn rcode_mnemonics() {
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::Refused), "REFUSED");
        assert_eq!(rcode_name(ResponseCode::Unknown(3000)), "RCODE3000");
    }
}
