//! What http, tls and page checks share (`resolve`, `ip_version`, trust,
//! revocation), and the [`Interner`] that holds each distinct value once.
//!
//! Memory must not depend on how checks are written: 10,000 checks naming
//! the same `ca_file`, carrying the same inline `ca_pem` (as the collector
//! hands them out) or the same `resolve` pin hold one parsed copy of it, and
//! the file is read once, not 10,000 times.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use super::spec::SpecCx;
use super::{
    ConfigError, IpVersion, NetOptions, RevocationMode, RevocationPolicy, parse_pem_certs,
};

/// Parsed extra roots, shared.
type Roots = Arc<Vec<CertificateDer<'static>>>;

/// One `Arc` per distinct trust set and `resolve` map among the checks built
/// with it. Built per config load or assignment (not kept for the process's
/// life, so values no check uses any more are freed with the checks).
#[derive(Debug, Default)]
pub struct Interner {
    /// (`ca_file` joined to the base, `ca_pem`) → its roots: a repeated
    /// source is neither read nor parsed again.
    by_source: HashMap<(Option<PathBuf>, Option<String>), Roots>,
    /// Parsed roots → the one copy: a `ca_pem` holding the same certificates
    /// as a `ca_file` shares it too.
    roots: HashMap<Vec<CertificateDer<'static>>, Roots>,
    /// `resolve` maps.
    resolve: HashMap<BTreeMap<String, IpAddr>, Arc<BTreeMap<String, IpAddr>>>,
}

impl Interner {
    /// The roots of (`ca_file`, `ca_pem`), parsed by `parse` the first time
    /// this pair is seen. A failure is not remembered (the next check with
    /// the same source reports its own error).
    fn roots<E>(
        &mut self,
        file: Option<PathBuf>,
        pem: Option<&str>,
        parse: impl FnOnce(Option<&PathBuf>, Option<&str>) -> Result<Vec<CertificateDer<'static>>, E>,
    ) -> Result<Roots, E> {
        if file.is_none() && pem.is_none() {
            return Ok(self.intern_roots(Vec::new()));
        }
        let key = (file, pem.map(str::to_string));
        if let Some(r) = self.by_source.get(&key) {
            return Ok(r.clone());
        }
        let parsed = parse(key.0.as_ref(), key.1.as_deref())?;
        let r = self.intern_roots(parsed);
        self.by_source.insert(key, r.clone());
        Ok(r)
    }

    fn intern_roots(&mut self, roots: Vec<CertificateDer<'static>>) -> Roots {
        if let Some(r) = self.roots.get(&roots) {
            return r.clone();
        }
        let r = Arc::new(roots.clone());
        self.roots.insert(roots, r.clone());
        r
    }

    /// The shared copy of a `resolve` map.
    fn resolve(&mut self, map: BTreeMap<String, IpAddr>) -> Arc<BTreeMap<String, IpAddr>> {
        if let Some(r) = self.resolve.get(&map) {
            return r.clone();
        }
        let r = Arc::new(map.clone());
        self.resolve.insert(map, r.clone());
        r
    }
}

impl SpecCx<'_> {
    /// What http, tls and page checks share: `resolve`, `ip_version`, and
    /// the extra roots of `ca_file` (relative to the config's directory) and
    /// `ca_pem`, each taken from `shared` when an earlier check had the same.
    pub(super) fn net(&self, shared: &mut Interner) -> Result<NetOptions, ConfigError> {
        let spec = self.spec;
        let mut resolve = BTreeMap::new();
        for (host, addr) in spec.resolve.iter().flatten() {
            let ip = addr
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| {
                    self.err("resolve", format!("{host:?} = {addr:?}: not an IP address"))
                })?;
            resolve.insert(host.to_ascii_lowercase(), ip);
        }
        let ip_version = match spec.ip_version {
            None => None,
            Some(4) => Some(IpVersion::V4),
            Some(6) => Some(IpVersion::V6),
            Some(v) => return Err(self.err("ip_version", format!("{v} is neither 4 nor 6"))),
        };
        let ca_file = spec.ca_file.as_ref().map(|p| self.base.join(p));
        let extra_roots = shared.roots(ca_file, spec.ca_pem.as_deref(), |file, pem| {
            let mut roots = Vec::new();
            if let Some(path) = file {
                let text = std::fs::read(path).map_err(|e| {
                    self.err("ca_file", format!("cannot read {}: {e}", path.display()))
                })?;
                roots.extend(
                    parse_pem_certs(&text)
                        .map_err(|m| self.err("ca_file", format!("{}: {m}", path.display())))?,
                );
            }
            if let Some(pem) = pem {
                roots.extend(parse_pem_certs(pem.as_bytes()).map_err(|m| self.err("ca_pem", m))?);
            }
            Ok(roots)
        })?;
        Ok(NetOptions {
            resolve: shared.resolve(resolve),
            ip_version,
            extra_roots,
            revocation: self.revocation()?,
        })
    }

    /// `revocation` (default "staple") and `revocation_required` (default false).
    pub(super) fn revocation(&self) -> Result<RevocationPolicy, ConfigError> {
        let spec = self.spec;
        let mode = match spec.revocation.as_deref() {
            None => RevocationMode::default(),
            Some(s) => RevocationMode::parse(s).ok_or_else(|| {
                self.err(
                    "revocation",
                    format!("{s:?} is not one of \"off\", \"staple\", \"ocsp\", \"ocsp+crl\""),
                )
            })?,
        };
        let required = spec.revocation_required.unwrap_or(false);
        if required && mode == RevocationMode::Off {
            return Err(self.err(
                "revocation_required",
                "is true but revocation = \"off\": nothing would be checked".into(),
            ));
        }
        Ok(RevocationPolicy { mode, required })
    }
}
