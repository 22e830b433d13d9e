//! CRLs (RFC 5280 §5): a downloaded list is believed only when the issuer
//! signed it, it names the issuer, and it is current (thisUpdate passed,
//! nextUpdate not). What is kept of it is the set of revoked serials.

use std::collections::HashMap;

use jiff::Timestamp;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::{Issuer, reason_name};

/// How a CRL lists one serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub revoked_at: Option<Timestamp>,
    pub reason: Option<String>,
}

/// A verified CRL, reduced to what a lookup needs.
#[derive(Debug, Clone)]
pub struct Crl {
    /// Serial (without sign padding) → entry.
    revoked: HashMap<Vec<u8>, Entry>,
    pub this_update: Timestamp,
    pub next_update: Option<Timestamp>,
}

impl Crl {
    /// The entry for `serial`, if revoked.
    pub fn lookup(&self, serial: &[u8]) -> Option<&Entry> {
        self.revoked.get(super::der::unsigned_int(serial))
    }
}

/// Parses and checks `der` against `issuer` at `now`.
pub fn verify(der: &[u8], issuer: &Issuer, now: Timestamp) -> Result<Crl, String> {
    let (_, crl) =
        CertificateRevocationList::from_der(der).map_err(|e| format!("malformed CRL: {e}"))?;
    if crl.issuer().as_raw() != issuer.name.as_slice() {
        return Err(format!(
            "the CRL is issued by {}, not the certificate's issuer",
            crl.issuer()
        ));
    }
    let spki = issuer.spki()?;
    crl.verify_signature(&spki)
        .map_err(|e| format!("the CRL's signature does not verify: {e}"))?;
    let ts = |t: x509_parser::time::ASN1Time| Timestamp::from_second(t.timestamp()).ok();
    let this_update = ts(crl.last_update()).ok_or("the CRL's thisUpdate is out of range")?;
    let next_update = crl.next_update().and_then(ts);
    if this_update.as_second() > now.as_second() + 300 {
        return Err(format!(
            "the CRL's thisUpdate {this_update} is in the future"
        ));
    }
    if let Some(next) = next_update
        && next.as_second() + 300 < now.as_second()
    {
        return Err(format!("the CRL is stale: nextUpdate {next} has passed"));
    }
    let revoked = crl
        .iter_revoked_certificates()
        .map(|rc| {
            let entry = Entry {
                revoked_at: ts(rc.revocation_date),
                reason: rc.reason_code().map(|(_, c)| reason_name(c.0).to_string()),
            };
            (super::der::unsigned_int(rc.raw_serial()).to_vec(), entry)
        })
        .collect();
    Ok(Crl {
        revoked,
        this_update,
        next_update,
    })
}
