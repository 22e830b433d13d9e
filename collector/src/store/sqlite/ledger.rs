//! [`LedgerConn`]: the SLA ledger's own write connection.

use super::*;

/// The SQLite side of [`crate::store::LedgerConn`]: a write connection of its own
/// (WAL lets it take turns with the batch writer; each ledger write is small).
pub struct LedgerConn {
    conn: Connection,
}

impl std::fmt::Debug for LedgerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedgerConn").finish_non_exhaustive()
    }
}

impl LedgerConn {
    /// Opens a write connection to the existing store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<LedgerConn, StoreError> {
        Ok(LedgerConn {
            conn: open_writer(data_dir)?,
        })
    }

    /// See [`crate::store::LedgerConn::write`].
    pub fn write(&mut self, w: &crate::store::LedgerWrite) -> Result<u64, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: i64 =
            tx.query_row("SELECT version FROM ledger_state WHERE id = 1", [], |r| {
                r.get(0)
            })?;
        let found = u64_col(found);
        if found != w.base {
            return Err(StoreError::LedgerConflict {
                expected: w.base,
                found,
            });
        }
        let version = to_i64(w.base + 1);
        {
            let mut del = tx.prepare_cached("DELETE FROM ledger WHERE contract = ?1")?;
            for c in &w.reset_contracts {
                del.execute([c])?;
            }
            let mut up = tx.prepare_cached(
                "INSERT INTO ledger (contract, month, chunk, version, data) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (contract, month, chunk) DO UPDATE SET version = excluded.version, data = excluded.data",
            )?;
            for r in &w.rows {
                up.execute(params![r.contract, r.month, r.chunk, version, r.data])?;
            }
        }
        tx.execute(
            "UPDATE ledger_state SET cursor = ?1, version = ?2 WHERE id = 1",
            params![to_i64(w.cursor), version],
        )?;
        tx.commit()?;
        Ok(w.base + 1)
    }
}
