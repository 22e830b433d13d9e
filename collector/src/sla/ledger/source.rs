//! [`LedgerSource`]: where the keeper reads committed results.

use crate::store::{StoreError, StoredResult};

/// Where the keeper reads committed results (the store, or a test's memory).
pub trait LedgerSource {
    /// See [`crate::store::Reader::feed_head`].
    fn feed_head(&mut self) -> Result<u64, StoreError>;
    /// See [`crate::store::Reader::feed_after`].
    fn feed_after(
        &mut self,
        cursor: u64,
        max_batches: u64,
        f: &mut dyn FnMut(StoredResult),
    ) -> Result<u64, StoreError>;
    /// Every stored result of `checks` started in `[from_ms, to_ms)`, any order.
    fn results_between(
        &mut self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
        f: &mut dyn FnMut(StoredResult),
    ) -> Result<(), StoreError>;
}

impl LedgerSource for crate::store::Reader {
    fn feed_head(&mut self) -> Result<u64, StoreError> {
        crate::store::Reader::feed_head(self)
    }
    fn feed_after(
        &mut self,
        cursor: u64,
        max_batches: u64,
        f: &mut dyn FnMut(StoredResult),
    ) -> Result<u64, StoreError> {
        crate::store::Reader::feed_after(self, cursor, max_batches, f)
    }
    fn results_between(
        &mut self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
        f: &mut dyn FnMut(StoredResult),
    ) -> Result<(), StoreError> {
        self.for_each_result(checks, from_ms, to_ms, f)
    }
}
