//! OCSP responses made at test time, signed by a [`TestCa`] or by a
//! responder certificate it delegated: good, revoked, unknown, stale, not
//! yet valid, for another serial, with a broken signature. Also the
//! `openssl ocsp` CLI as a second, independent encoder (what real CAs'
//! software looks like), and an HTTP responder route.

use std::path::Path;
use std::process::Command;

use rcgen::{KeyPair, SigningKey};
use time::OffsetDateTime;

use crate::certs::{ServerCert, TestCa};

/// Tiny DER writer and reader for the fixtures (not the agent's code: the
/// tests must not share the encoder they check).
pub mod der {
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const ENUMERATED: u8 = 0x0a;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;

    /// One item.
    pub fn item(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(contents);
        out
    }

    /// Splits the first item off `b`: (tag, whole item, rest).
    pub fn split(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = b[0];
        let (len, header) = if b[1] < 0x80 {
            (b[1] as usize, 2)
        } else {
            let n = (b[1] & 0x7f) as usize;
            let len = b[2..2 + n]
                .iter()
                .fold(0usize, |a, &x| (a << 8) | x as usize);
            (len, 2 + n)
        };
        (tag, &b[..header + len], &b[header + len..])
    }

    /// The contents of an item.
    pub fn contents(item: &[u8]) -> &[u8] {
        let header = if item[1] < 0x80 {
            2
        } else {
            2 + (item[1] & 0x7f) as usize
        };
        &item[header..]
    }

    /// A GeneralizedTime for unix seconds `t`.
    pub fn time(t: i64) -> Vec<u8> {
        let dt = time::OffsetDateTime::from_unix_timestamp(t).expect("valid time");
        let s = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
        item(GENERALIZED_TIME, s.as_bytes())
    }
}

/// The subject Name (whole DER item) of a certificate.
pub fn subject_der(cert: &[u8]) -> Vec<u8> {
    let tbs = der::contents(der::split(cert).1);
    let tbs = der::contents(der::split(tbs).1);
    let mut rest = tbs;
    let mut fields = Vec::new();
    while !rest.is_empty() {
        let (tag, item, r) = der::split(rest);
        fields.push((tag, item));
        rest = r;
    }
    // [0] version, serial, signature, issuer, validity, subject
    let start = usize::from(fields[0].0 == 0xa0);
    fields[start + 4].1.to_vec()
}

/// What the response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Good,
    /// Revoked at unix seconds `at`, with an RFC 5280 reason code.
    Revoked {
        at: i64,
        reason: Option<u8>,
    },
    Unknown,
}

/// Who signs.
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    /// The issuing CA itself.
    Ca,
    /// A responder certificate (included in the response) with its key.
    Delegated(&'a ServerCert),
}

/// A response to build for `leaf`, issued by `ca`.
#[derive(Debug, Clone)]
pub struct ResponseSpec<'a> {
    pub ca: &'a TestCa,
    pub serial: Vec<u8>,
    pub status: Status,
    pub this_update: i64,
    pub next_update: Option<i64>,
    pub signer: Signer<'a>,
    /// SHA-256 CertID instead of SHA-1.
    pub sha256: bool,
    /// Flip a bit of the signature.
    pub corrupt_signature: bool,
    /// Leave a delegated responder's certificate out of the response.
    pub omit_certs: bool,
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl<'a> ResponseSpec<'a> {
    /// Good for `leaf`, this update an hour ago, next update in a day, signed by `ca`.
    pub fn good(ca: &'a TestCa, leaf: &ServerCert) -> Self {
        ResponseSpec {
            ca,
            serial: leaf.serial.clone(),
            status: Status::Good,
            this_update: now() - 3600,
            next_update: Some(now() + 86_400),
            signer: Signer::Ca,
            sha256: false,
            corrupt_signature: false,
            omit_certs: false,
        }
    }

    /// Revoked two hours ago for `reason`.
    pub fn revoked(ca: &'a TestCa, leaf: &ServerCert, reason: Option<u8>) -> Self {
        ResponseSpec {
            status: Status::Revoked {
                at: now() - 7200,
                reason,
            },
            ..Self::good(ca, leaf)
        }
    }

    /// The DER `OCSPResponse`.
    pub fn build(&self) -> Vec<u8> {
        let ca_cert = self.ca.cert.as_ref();
        let digest = |b: &[u8]| {
            let alg = if self.sha256 {
                &ring::digest::SHA256
            } else {
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY
            };
            ring::digest::digest(alg, b).as_ref().to_vec()
        };
        let hash_oid: &[u8] = if self.sha256 {
            &[0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 1]
        } else {
            &[0x2b, 0x0e, 3, 2, 0x1a]
        };
        let mut alg = der::item(der::OID, hash_oid);
        alg.extend(der::item(der::NULL, &[]));
        let mut cert_id = der::item(der::SEQUENCE, &alg);
        cert_id.extend(der::item(der::OCTET_STRING, &digest(&subject_der(ca_cert))));
        cert_id.extend(der::item(
            der::OCTET_STRING,
            &digest(&self.ca.public_key_bits()),
        ));
        let mut serial = self.serial.clone();
        if serial.first().is_some_and(|b| b & 0x80 != 0) {
            serial.insert(0, 0);
        }
        cert_id.extend(der::item(der::INTEGER, &serial));
        let mut single = der::item(der::SEQUENCE, &cert_id);
        single.extend(match self.status {
            Status::Good => der::item(0x80, &[]),
            Status::Unknown => der::item(0x82, &[]),
            Status::Revoked { at, reason } => {
                let mut ri = der::time(at);
                if let Some(r) = reason {
                    ri.extend(der::item(0xa0, &der::item(der::ENUMERATED, &[r])));
                }
                der::item(0xa1, &ri)
            }
        });
        single.extend(der::time(self.this_update));
        if let Some(n) = self.next_update {
            single.extend(der::item(0xa0, &der::time(n)));
        }
        let single = der::item(der::SEQUENCE, &single);

        let signer_cert: &[u8] = match self.signer {
            Signer::Ca => ca_cert,
            Signer::Delegated(r) => r.chain[0].as_ref(),
        };
        let mut tbs = der::item(0xa1, &subject_der(signer_cert));
        tbs.extend(der::time(now()));
        tbs.extend(der::item(der::SEQUENCE, &single));
        let tbs = der::item(der::SEQUENCE, &tbs);

        let mut sig = match self.signer {
            Signer::Ca => self.ca.sign(&tbs),
            Signer::Delegated(r) => KeyPair::from_pem(&r.key_pem)
                .expect("responder key")
                .sign(&tbs)
                .expect("sign"),
        };
        if self.corrupt_signature {
            let last = sig.len() - 1;
            sig[last] ^= 1;
        }
        // ecdsa-with-SHA256 (1.2.840.10045.4.3.2)
        let sig_alg = der::item(
            der::SEQUENCE,
            &der::item(der::OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 4, 3, 2]),
        );
        let mut bits = vec![0u8];
        bits.extend(sig);
        let mut basic = tbs;
        basic.extend(sig_alg);
        basic.extend(der::item(der::BIT_STRING, &bits));
        if let Signer::Delegated(r) = self.signer
            && !self.omit_certs
        {
            basic.extend(der::item(
                0xa0,
                &der::item(der::SEQUENCE, r.chain[0].as_ref()),
            ));
        }
        let basic = der::item(der::SEQUENCE, &basic);

        let mut rb = der::item(der::OID, &[0x2b, 6, 1, 5, 5, 7, 0x30, 1, 1]);
        rb.extend(der::item(der::OCTET_STRING, &basic));
        let mut resp = der::item(der::ENUMERATED, &[0]);
        resp.extend(der::item(0xa0, &der::item(der::SEQUENCE, &rb)));
        der::item(der::SEQUENCE, &resp)
    }
}

/// An OCSP response with a non-successful status (3 = tryLater).
pub fn unsuccessful(status: u8) -> Vec<u8> {
    der::item(der::SEQUENCE, &der::item(der::ENUMERATED, &[status]))
}

/// Asks the `openssl ocsp` CLI for a response about `leaf`, signed by
/// `ca`, from an `index.txt` that marks it revoked (`Some(reason)`, e.g.
/// "keyCompromise") or valid (`None`), valid for a day. Panics with the
/// tool's output when it fails.
pub fn openssl_response(
    dir: &Path,
    ca: &TestCa,
    leaf: &ServerCert,
    revoked: Option<&str>,
) -> Vec<u8> {
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.join("ca.key"), &ca.key_pem).unwrap();
    std::fs::write(dir.join("leaf.pem"), &leaf.leaf_pem).unwrap();
    let fmt = |t: i64| {
        let d = OffsetDateTime::from_unix_timestamp(t).unwrap();
        format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}Z",
            d.year() % 100,
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        )
    };
    let serial: String = leaf.serial.iter().map(|b| format!("{b:02X}")).collect();
    let line = match revoked {
        Some(reason) => format!(
            "R\t{}\t{},{reason}\t{serial}\tunknown\t/{}\n",
            fmt(leaf.not_after),
            fmt(now() - 7200),
            leaf.subject
        ),
        None => format!(
            "V\t{}\t\t{serial}\tunknown\t/{}\n",
            fmt(leaf.not_after),
            leaf.subject
        ),
    };
    std::fs::write(dir.join("index.txt"), line).unwrap();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "ocsp",
            "-index",
            "index.txt",
            "-rsigner",
            "ca.pem",
            "-rkey",
            "ca.key",
            "-CA",
            "ca.pem",
            "-issuer",
            "ca.pem",
            "-cert",
            "leaf.pem",
            "-respout",
            "resp.der",
            "-ndays",
            "1",
        ])
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl ocsp failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join("resp.der")).expect("openssl wrote resp.der")
}
