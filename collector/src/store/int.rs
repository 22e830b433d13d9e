//! Counters and seqs are `u64` in Rust and signed 64-bit integers in both
//! databases (SQLite INTEGER, PostgreSQL BIGINT): the two conversions,
//! saturating rather than failing, since no real count reaches 2⁶³.

/// A `u64` for a column (saturates at `i64::MAX`).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A column's value as `u64` (a negative one, which we never write, is 0).
pub(crate) fn u64_col(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
