//! Who may read: `/api/v1/contracts`, `/api/v1/agents`, `/api/v1/reports/…`,
//! `/metrics` and any page served for people expose every client site,
//! vendor and incident, so they are behind read credentials.
//!
//! - `[[viewers]] name, token_sha256`: a viewer sends `Authorization: Bearer
//!   <token>` (Prometheus: `authorization: { credentials_file: … }`), compared
//!   like agent tokens (SHA-256, constant time, against every viewer).
//! - A browser signs in once at `/login` (a form posting the token) and gets a
//!   cookie holding the viewer's name, an expiry and an HMAC-SHA256 of both
//!   under a key made at every start: it can be checked but never turned back
//!   into the token, and a restart voids every cookie.
//! - [`ReadMode`]: with viewers, credentials are required; `[collector]
//!   public_read = true` (and no viewers) serves reads to anyone, as before;
//!   with neither, reads are refused, so vendor data is never public by
//!   accident.
//!
//! The check is a layer (`crate::http::login::require_viewer`) on the group
//! of read routes that `crate::http::read_routes` builds: a new read route is
//! covered by adding it there. The modes and viewers themselves are config
//! ([`crate::config::ReadMode`], [`crate::config::Viewer`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::token_sha256;
use crate::config::CollectorConfig;
pub use crate::config::{ReadMode, Viewer};

/// Name of the sign-in cookie.
pub const COOKIE_NAME: &str = "slaprobe_viewer";
/// How long a sign-in cookie is valid.
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The read credentials of a running collector; cheap to clone.
#[derive(Clone)]
pub struct ReadAccess {
    inner: Arc<Inner>,
}

struct Inner {
    mode: ReadMode,
    viewers: Vec<Viewer>,
    /// HMAC key of sign-in cookies, made at start and never written anywhere.
    cookie_key: [u8; 32],
    /// Cookies get `Secure` when the listener speaks TLS.
    secure_cookie: bool,
}

impl std::fmt::Debug for ReadAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAccess")
            .field("mode", &self.inner.mode)
            .field("viewers", &self.inner.viewers.len())
            .finish_non_exhaustive()
    }
}

/// Why a read was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadDenied {
    /// No token and no valid cookie.
    Missing,
    /// A token no viewer has.
    Unknown,
    /// [`ReadMode::Closed`].
    Closed,
}

impl ReadDenied {
    /// What the caller is told.
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => {
                "read credentials required: send `Authorization: Bearer <viewer token>` or sign in at /login"
            }
            Self::Unknown => "unknown token: no [[viewers]] entry has its token_sha256",
            Self::Closed => {
                "reads are closed: configure [[viewers]] (name, token_sha256) or set [collector] public_read = true"
            }
        }
    }
}

impl ReadAccess {
    /// The read credentials of `config`, with a fresh cookie key.
    pub fn new(config: &CollectorConfig) -> Self {
        let viewers: Vec<Viewer> = config.viewers.clone();
        let mode = config.read_mode();
        Self {
            inner: Arc::new(Inner {
                mode,
                viewers,
                cookie_key: random_key(),
                secure_cookie: config.collector.tls.is_some(),
            }),
        }
    }

    /// The mode in force.
    pub fn mode(&self) -> ReadMode {
        self.inner.mode
    }

    /// The viewer a request speaks for (`None` in public mode).
    pub fn check(&self, headers: &HeaderMap) -> Result<Option<&str>, ReadDenied> {
        self.check_at(headers, unix_now())
    }

    fn check_at(&self, headers: &HeaderMap, now: u64) -> Result<Option<&str>, ReadDenied> {
        match self.inner.mode {
            ReadMode::Public => return Ok(None),
            ReadMode::Closed => return Err(ReadDenied::Closed),
            ReadMode::Viewers => {}
        }
        if let Some(token) = bearer(headers) {
            return self.by_token(token).map(Some).ok_or(ReadDenied::Unknown);
        }
        for value in headers.get_all(COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for pair in value.split(';') {
                if let Some((k, v)) = pair.trim().split_once('=')
                    && k == COOKIE_NAME
                    && let Some(name) = self.verify_cookie(v, now)
                {
                    return Ok(Some(name));
                }
            }
        }
        Err(ReadDenied::Missing)
    }

    /// The viewer whose token this is: every viewer is compared, so the
    /// time taken does not say which one (if any) matched.
    fn by_token(&self, token: &str) -> Option<&str> {
        let presented = token_sha256(token);
        let mut found = None;
        for (i, v) in self.inner.viewers.iter().enumerate() {
            if bool::from(v.token_sha256.ct_eq(&presented)) {
                found = Some(i);
            }
        }
        found.map(|i| self.inner.viewers[i].name.as_str())
    }

    /// `name.expiry.mac` for `name`, valid until `now + COOKIE_LIFETIME`.
    fn cookie_value(&self, name: &str, now: u64) -> String {
        let expiry = now + COOKIE_LIFETIME.as_secs();
        let mac = hmac_sha256(
            &self.inner.cookie_key,
            format!("{name}|{expiry}").as_bytes(),
        );
        format!("{name}.{expiry}.{}", hex::encode(mac))
    }

    /// The viewer a cookie value names, if its MAC holds, it has not expired
    /// and the viewer is still configured.
    fn verify_cookie(&self, value: &str, now: u64) -> Option<&str> {
        let (rest, mac_hex) = value.rsplit_once('.')?;
        let (name, expiry) = rest.rsplit_once('.')?;
        let expiry: u64 = expiry.parse().ok()?;
        let mut mac = [0u8; 32];
        hex::decode_to_slice(mac_hex, &mut mac).ok()?;
        let want = hmac_sha256(
            &self.inner.cookie_key,
            format!("{name}|{expiry}").as_bytes(),
        );
        if !bool::from(want.ct_eq(&mac)) || expiry <= now {
            return None;
        }
        self.inner
            .viewers
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.name.as_str())
    }
}

/// A successful sign-in: who, and the `Set-Cookie` value that proves it.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// The viewer's name.
    pub viewer: String,
    /// The whole `Set-Cookie` value (`HttpOnly; SameSite=Strict`, `Secure` over TLS).
    pub set_cookie: String,
}

impl ReadAccess {
    /// Signs in with a viewer token (`None` for a token no viewer has). The
    /// token itself is never stored.
    pub fn sign_in(&self, token: &str) -> Option<SignIn> {
        let name = self.by_token(token)?;
        let value = self.cookie_value(name, unix_now());
        let set_cookie = format!(
            "{COOKIE_NAME}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
            COOKIE_LIFETIME.as_secs(),
            if self.inner.secure_cookie {
                "; Secure"
            } else {
                ""
            }
        );
        Some(SignIn {
            viewer: name.to_string(),
            set_cookie,
        })
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// HMAC-SHA256 (RFC 2104) with a 32-byte key: a dozen lines, and no second
/// `sha2` major version that the `hmac` crate in the tree would pull in.
fn hmac_sha256(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    let outer = Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize();
    let mut out = [0u8; 32];
    out.copy_from_slice(&outer);
    out
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// 32 random bytes from the OS (`/dev/urandom`; elsewhere `RandomState`,
/// which is seeded from the OS).
pub(crate) fn random_key() -> [u8; 32] {
    let mut buf = [0u8; 32];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf));
    if from_os.is_err() {
        use std::hash::{BuildHasher, Hasher};
        for chunk in buf.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_openssl() {
        // printf 'Hi There' | openssl dgst -sha256 -mac HMAC -macopt hexkey:0b0b…(32 bytes)
        let key = [0x0bu8; 32];
        let mac = hmac_sha256(&key, b"Hi There");
        assert_eq!(
            hex::encode(mac),
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
        );
    }
}
