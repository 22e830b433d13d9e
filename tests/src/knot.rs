//! Signed DNS zones for DNSSEC tests: knotd (Debian package `knot`) serving
//! zones on `127.0.0.1`, some signed by knotd itself, some pre-signed here
//! with hickory's signer (to get signatures with chosen validity windows,
//! e.g. expired ones), and [`ZoneKey`] for tests that sign in memory.
//!
//! Every time is relative to the test's clock (`now`), so the fixtures do not
//! depend on the date.
//!
//! [`KnotZones::start`] serves:
//!
//! | zone             | signed by | what                                                   |
//! |------------------|-----------|--------------------------------------------------------|
//! | `good.test.`     | knotd     | `www` A `192.0.2.10`; anchor: the KSK's DS             |
//! | `mismatch.test.` | knotd     | `www` A `192.0.2.30`; anchor: a DS whose digest is wrong |
//! | `expired.test.`  | here      | `www` A `192.0.2.20` signed 30 to 16 days ago (expired); the rest valid |
//! | `plain.test.`    | nobody    | `www` A `192.0.2.40`, unsigned                          |
//!
//! [`KnotZones::anchor`] is a trust anchor file's text (DS records) for all
//! four zones.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::dnssec::{Algorithm, DigestType, DnssecSigner, SigningKey, Verifier};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet};
use rustls::pki_types::PrivatePkcs8KeyDer;

/// A zone's signing key (ECDSA P-256, flags 257: used as KSK and ZSK).
pub struct ZoneKey {
    zone: Name,
    pkcs8: Vec<u8>,
    dnskey: DNSKEY,
}

impl std::fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneKey")
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

impl ZoneKey {
    /// A new key for `zone` (absolute, e.g. `acme.test.`).
    pub fn generate(zone: &str) -> anyhow::Result<Self> {
        let zone = Name::from_str(zone)?;
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256)?;
        let key = EcdsaSigningKey::from_pkcs8(&pkcs8, Algorithm::ECDSAP256SHA256)?;
        let public = key.to_public_key()?;
        let dnskey = DNSKEY::new(true, true, false, public);
        Ok(Self {
            zone,
            pkcs8: pkcs8.secret_pkcs8_der().to_vec(),
            dnskey,
        })
    }

    /// The zone's apex name.
    pub fn zone(&self) -> &Name {
        &self.zone
    }

    /// The DNSKEY record.
    pub fn dnskey_record(&self) -> Record {
        Record::from_rdata(
            self.zone.clone(),
            300,
            RData::DNSSEC(DNSSECRData::DNSKEY(self.dnskey.clone())),
        )
    }

    /// The DNSKEY itself.
    pub fn dnskey(&self) -> &DNSKEY {
        &self.dnskey
    }

    /// The key's DS (SHA-256).
    pub fn ds(&self) -> anyhow::Result<DS> {
        ds_of(&self.zone, &self.dnskey)
    }

    /// The DS as a record, for a parent zone.
    pub fn ds_record(&self) -> anyhow::Result<Record> {
        Ok(Record::from_rdata(
            self.zone.clone(),
            300,
            RData::DNSSEC(DNSSECRData::DS(self.ds()?)),
        ))
    }

    /// An RRSIG over `records` (one RRset) valid from `inception` to
    /// `expiration` (unix seconds).
    pub fn sign(
        &self,
        records: &[Record],
        inception: i64,
        expiration: i64,
    ) -> anyhow::Result<Record> {
        let first = records.first().context("nothing to sign")?;
        let mut set = RecordSet::with_ttl(first.name.clone(), first.record_type(), first.ttl);
        for r in records {
            set.insert(r.clone(), 0);
        }
        let key = EcdsaSigningKey::from_pkcs8(
            &PrivatePkcs8KeyDer::from(self.pkcs8.clone()),
            Algorithm::ECDSAP256SHA256,
        )?;
        let signer = DnssecSigner::new(
            self.dnskey.clone(),
            Box::new(key),
            self.zone.clone(),
            Duration::from_secs(u64::try_from(expiration - inception)?),
        );
        let inception = time::OffsetDateTime::from_unix_timestamp(inception)?;
        let sig = RRSIG::from_rrset(&set, DNSClass::IN, inception, &signer)?;
        Ok(Record::from_rdata(
            first.name.clone(),
            first.ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(sig)),
        ))
    }
}

/// The SHA-256 DS of `key` at `zone`.
pub fn ds_of(zone: &Name, key: &DNSKEY) -> anyhow::Result<DS> {
    let digest = key.to_digest(zone, DigestType::SHA256)?;
    Ok(DS::new(
        key.calculate_key_tag()?,
        key.algorithm(),
        DigestType::SHA256,
        digest.as_ref().to_vec(),
    ))
}

/// A DS line for a trust anchor file: `zone. IN DS tag alg 2 HEX`.
pub fn ds_line(zone: &Name, ds: &DS) -> String {
    let hex: String = ds.digest().iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "{zone} IN DS {} {} 2 {hex}",
        ds.key_tag(),
        u8::from(ds.algorithm())
    )
}

/// knotd serving the zones in the module docs on `127.0.0.1`.
pub struct KnotZones {
    addr: SocketAddr,
    anchor: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for KnotZones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnotZones")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Where knotd is (Debian installs it in /usr/sbin, not always on PATH).
fn knotd() -> PathBuf {
    for p in ["/usr/sbin/knotd", "/usr/bin/knotd"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("knotd")
}

const SOA: &str = "@ 300 IN SOA ns1 hostmaster 2026120101 3600 600 86400 60\n@ 300 IN NS ns1\nns1 300 IN A 127.0.0.1\n";

impl KnotZones {
    /// Starts knotd with the zones signed as of `now` (unix seconds) and
    /// waits until it answers for every zone.
    pub async fn start(now: i64) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;

        for (zone, www) in [
            ("good.test", "192.0.2.10"),
            ("mismatch.test", "192.0.2.30"),
            ("plain.test", "192.0.2.40"),
        ] {
            std::fs::write(
                d.join(format!("{zone}.zone")),
                format!("$ORIGIN {zone}.\n{SOA}www 300 IN A {www}\n"),
            )?;
        }
        let expired = ZoneKey::generate("expired.test.")?;
        std::fs::write(
            d.join("expired.test.zone"),
            presigned_expired(&expired, now)?,
        )?;

        let conf = format!(
            "server:\n    listen: {addr_knot}\n    rundir: {dir}\n\
             database:\n    storage: {dir}\n\
             template:\n  - id: default\n    storage: {dir}\n    file: \"%s.zone\"\n    zonefile-sync: -1\n    journal-content: none\n\
             policy:\n  - id: ecdsa\n    algorithm: ecdsap256sha256\n\
             zone:\n  - domain: good.test\n    dnssec-signing: on\n    dnssec-policy: ecdsa\n\
             \x20 - domain: mismatch.test\n    dnssec-signing: on\n    dnssec-policy: ecdsa\n\
             \x20 - domain: expired.test\n  - domain: plain.test\n",
            addr_knot = format_args!("127.0.0.1@{port}"),
            dir = d.display()
        );
        let conf_path = d.join("knot.conf");
        std::fs::write(&conf_path, conf)?;
        let log = std::fs::File::create(d.join("knotd.log"))?;
        let child = Command::new(knotd())
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting knotd (Debian package `knot`)")?;
        let mut zones = Self {
            addr,
            anchor: String::new(),
            child,
            dir,
        };

        // Ready when every zone answers its SOA; knotd signs at load.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        for zone in [
            "good.test.",
            "mismatch.test.",
            "expired.test.",
            "plain.test.",
        ] {
            loop {
                if let Some(status) = zones.child.try_wait()? {
                    bail!("knotd exited ({status}): {}", zones.log());
                }
                if crate::dns_client::query(addr, zone, hickory_proto::rr::RecordType::SOA, false)
                    .await
                    .is_ok_and(|r| !r.answers.is_empty())
                {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    bail!("knotd did not serve {zone} within 20s: {}", zones.log());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        // The anchor: the DS of each zone's KSK as knotd published it.
        let mut anchor = String::from("; test trust anchor (DS records)\n");
        for zone in ["good.test.", "mismatch.test."] {
            let r =
                crate::dns_client::query(addr, zone, hickory_proto::rr::RecordType::DNSKEY, true)
                    .await
                    .with_context(|| format!("DNSKEY {zone} from knotd"))?;
            let name = Name::from_str(zone)?;
            let ksk = r
                .answers
                .iter()
                .find_map(|rec| match &rec.data {
                    RData::DNSSEC(DNSSECRData::DNSKEY(k)) if k.secure_entry_point() => Some(k),
                    _ => None,
                })
                .with_context(|| format!("knotd published no KSK for {zone}"))?;
            let mut ds = ds_of(&name, ksk)?;
            if zone == "mismatch.test." {
                // Same key tag and algorithm, wrong digest: a DS that matches nothing.
                let mut digest = ds.digest().to_vec();
                digest[0] ^= 0xff;
                ds = DS::new(ds.key_tag(), ds.algorithm(), DigestType::SHA256, digest);
            }
            anchor.push_str(&ds_line(&name, &ds));
            anchor.push('\n');
        }
        anchor.push_str(&ds_line(expired.zone(), &expired.ds()?));
        anchor.push('\n');
        // plain.test. is unsigned; an anchor for it makes its answers required-signed.
        let plain = ZoneKey::generate("plain.test.")?;
        anchor.push_str(&ds_line(plain.zone(), &plain.ds()?));
        anchor.push('\n');
        zones.anchor = anchor;
        Ok(zones)
    }

    /// Where knotd listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Trust anchor file text (DS records) for the four zones.
    pub fn anchor(&self) -> &str {
        &self.anchor
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knotd.log")).unwrap_or_default()
    }
}

impl Drop for KnotZones {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `expired.test.` as a zone file: everything validly signed (an hour ago
/// until 14 days on) except `www` A, signed from 30 to 16 days ago.
fn presigned_expired(key: &ZoneKey, now: i64) -> anyhow::Result<String> {
    let origin = key.zone().clone();
    let n = |s: &str| -> anyhow::Result<Name> { Ok(Name::from_str(s)?.append_domain(&origin)?) };
    use hickory_proto::rr::rdata::{A, NS, SOA as Soa};
    let soa = Record::from_rdata(
        origin.clone(),
        300,
        RData::SOA(Soa::new(
            n("ns1")?,
            n("hostmaster")?,
            2026120101,
            3600,
            600,
            86400,
            60,
        )),
    );
    let ns = Record::from_rdata(origin.clone(), 300, RData::NS(NS(n("ns1")?)));
    let ns1 = Record::from_rdata(n("ns1")?, 300, RData::A(A::new(127, 0, 0, 1)));
    let www = Record::from_rdata(n("www")?, 300, RData::A(A::new(192, 0, 2, 20)));
    let dnskey = key.dnskey_record();
    let day = 86_400;
    let mut out = String::new();
    for (set, inc, exp) in [
        (vec![soa], now - 3600, now + 14 * day),
        (vec![ns], now - 3600, now + 14 * day),
        (vec![ns1], now - 3600, now + 14 * day),
        (vec![dnskey], now - 3600, now + 14 * day),
        (vec![www], now - 30 * day, now - 16 * day),
    ] {
        let sig = key.sign(&set, inc, exp)?;
        for r in set.iter().chain(std::iter::once(&sig)) {
            out.push_str(&r.to_string());
            out.push('\n');
        }
    }
    Ok(out)
}

/// A port free on 127.0.0.1 for both UDP and TCP (at the time of asking).
fn free_port() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both UDP and TCP")
}
