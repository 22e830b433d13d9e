//! [`LedgerConn`]: the SLA ledger's own connection.

use super::*;

/// The PostgreSQL side of [`crate::store::LedgerConn`]: a connection of its own
/// that holds the keeper's session advisory lock while it lives.
pub struct LedgerConn {
    client: Client,
    leading: bool,
}

impl std::fmt::Debug for LedgerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLedgerConn")
            .field("leading", &self.leading)
            .finish_non_exhaustive()
    }
}

impl LedgerConn {
    /// Connects (blocking; not from an async task).
    pub fn open(url: &str) -> Result<LedgerConn, StoreError> {
        Ok(LedgerConn {
            client: connect(url)?,
            leading: false,
        })
    }

    /// See [`crate::store::LedgerConn::try_lead`].
    pub fn try_lead(&mut self) -> Result<bool, StoreError> {
        if !self.leading {
            self.leading = self
                .client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&LEDGER_LOCK])?
                .try_get(0)?;
        }
        Ok(self.leading)
    }

    /// See [`crate::store::LedgerConn::write`]: one transaction, fenced on the
    /// version (`FOR UPDATE` on the state row).
    pub fn write(&mut self, w: &crate::store::LedgerWrite) -> Result<u64, StoreError> {
        let mut tx = self.client.transaction()?;
        tx.batch_execute("SET LOCAL synchronous_commit = on")?;
        let found: i64 = tx
            .query_one(
                "SELECT version FROM ledger_state WHERE id = 1 FOR UPDATE",
                &[],
            )?
            .try_get(0)?;
        let found = u64_col(found);
        if found != w.base {
            return Err(StoreError::LedgerConflict {
                expected: w.base,
                found,
            });
        }
        let version = to_i64(w.base + 1);
        if !w.reset_contracts.is_empty() {
            tx.execute(
                "DELETE FROM ledger WHERE contract = ANY($1)",
                &[&w.reset_contracts],
            )?;
        }
        if !w.rows.is_empty() {
            let contracts: Vec<&str> = w.rows.iter().map(|r| r.contract.as_str()).collect();
            let months: Vec<&str> = w.rows.iter().map(|r| r.month.as_str()).collect();
            let chunks: Vec<i64> = w.rows.iter().map(|r| r.chunk).collect();
            let data: Vec<&[u8]> = w.rows.iter().map(|r| r.data.as_slice()).collect();
            tx.execute(
                "INSERT INTO ledger (contract, month, chunk, version, data)
                 SELECT u.contract, u.month, u.chunk, $5, u.data
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[]) AS u(contract, month, chunk, data)
                 ON CONFLICT (contract, month, chunk) DO UPDATE SET version = excluded.version, data = excluded.data",
                &[&contracts, &months, &chunks, &data, &version],
            )?;
        }
        tx.execute(
            "UPDATE ledger_state SET cursor = $1, version = $2 WHERE id = 1",
            &[&to_i64(w.cursor), &version],
        )?;
        tx.commit()?;
        Ok(w.base + 1)
    }
}
