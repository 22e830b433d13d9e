//! The evidence digest of a monthly report: which stored results, exactly,
//! the figures were computed from.

use sha2::{Digest, Sha256};

/// `(count, hex SHA-256)` over `raw_results`, each result's raw JSON bytes
/// **exactly as stored** followed by one `\n`.
///
/// Canonical order and selection (the caller — the store — supplies them so):
/// the results of the contract's covered checks and of every canary check
/// (those rule 1a read: [`crate::sla::Contract::evidence_checks`]) whose
/// `started_at` lies in the month period `[period_start, period_end)`, ordered by `(agent, seq)`
/// ascending (agent ids compared bytewise). Anyone holding the same results
/// can recompute the digest: `sha256sum results.jsonl` over a file holding
/// one stored result per line, in that order, with a final newline.
pub fn evidence_digest<'a>(raw_results: impl Iterator<Item = &'a [u8]>) -> (u64, String) {
    let mut hasher = Sha256::new();
    let mut n = 0u64;
    for raw in raw_results {
        hasher.update(raw);
        hasher.update(b"\n");
        n += 1;
    }
    (n, hex::encode(hasher.finalize()))
}
