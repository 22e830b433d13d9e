//! Bearer-token authentication of agents: the SHA-256 of the presented token
//! is compared, in constant time and against every agent (no early exit),
//! with each configured `token_sha256`. Tokens are never logged or stored.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::CollectorConfig;

/// An agent the collector knows.
#[derive(Debug, Clone)]
pub struct Principal {
    pub id: String,
    pub location: String,
    token_sha256: [u8; 32],
}

/// The agents allowed in, by token hash.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    agents: Vec<Principal>,
}

/// Why a request was not authenticated (all answer 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A token no agent has.
    Unknown,
}

impl AuthError {
    /// The message for the 401 body.
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "missing bearer token: send `Authorization: Bearer <token>`",
            Self::Unknown => "unknown token: no [[agents]] entry has its token_sha256",
        }
    }
}

/// SHA-256 of a token, as configured in `token_sha256`.
pub fn token_sha256(token: &str) -> [u8; 32] {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(&digest);
    out
}

impl Auth {
    /// The configured agents plus `extra` (the embedded agent: id, location, token hash).
    pub fn new(config: &CollectorConfig, extra: Option<(String, String, [u8; 32])>) -> Self {
        let mut agents: Vec<Principal> = config
            .agents
            .iter()
            .map(|a| Principal {
                id: a.id.clone(),
                location: a.location.clone(),
                token_sha256: a.token_sha256,
            })
            .collect();
        if let Some((id, location, token_sha256)) = extra {
            agents.push(Principal {
                id,
                location,
                token_sha256,
            });
        }
        Self { agents }
    }

    /// The agent whose token the request carries.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<&Principal, AuthError> {
        let value = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Missing);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let presented = token_sha256(token);
        // Compare against every agent so the time taken does not depend on
        // which one (if any) matches.
        let mut found = None;
        for (i, p) in self.agents.iter().enumerate() {
            if bool::from(p.token_sha256.ct_eq(&presented)) {
                found = Some(i);
            }
        }
        found.map(|i| &self.agents[i]).ok_or(AuthError::Unknown)
    }

    /// Every principal (configured agents and the embedded one).
    pub fn principals(&self) -> &[Principal] {
        &self.agents
    }
}
