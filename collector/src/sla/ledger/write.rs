//! The rows a round changed, as one fenced [`LedgerWrite`].

use super::CHUNK_SLOTS;
use super::data::{ContractRow, LOCATIONS_ROW, MonthRow};
use super::keeper::Keeper;
use crate::sla::month::Month;
use crate::store::{LedgerRow, LedgerWrite};

impl Keeper {
    /// The rows changed since the last write.
    pub(super) fn collect_write(&mut self) -> LedgerWrite {
        let mut rows = Vec::new();
        for ci in std::mem::take(&mut self.changed_contracts) {
            let c = &self.contracts[ci];
            if let Some(l) = self.data.contracts.get(&c.name) {
                rows.push(LedgerRow {
                    contract: c.name.clone(),
                    month: String::new(),
                    chunk: -1,
                    data: serde_json::to_vec(&ContractRow {
                        fingerprint: l.fingerprint.clone(),
                        counters: l.counters,
                    })
                    .unwrap_or_default(),
                });
            }
        }
        let mut keys: Vec<(usize, Month)> = self.working.keys().copied().collect();
        keys.sort();
        for key in keys {
            let (ci, month) = key;
            let c = &self.contracts[ci];
            let Some(m) = self
                .data
                .contracts
                .get(&c.name)
                .and_then(|l| l.months.get(&month))
            else {
                continue;
            };
            let w = self.working.get_mut(&key).expect("key listed");
            if w.changed {
                rows.push(LedgerRow {
                    contract: c.name.clone(),
                    month: month.to_string(),
                    chunk: -1,
                    data: serde_json::to_vec(&MonthRow {
                        settled: m.settled,
                        base_batch: m.base_batch,
                        latency: m.latency.clone(),
                    })
                    .unwrap_or_default(),
                });
                w.changed = false;
            }
            for k in std::mem::take(&mut w.changed_chunks) {
                let lo = (k * CHUNK_SLOTS) as usize;
                let hi = (lo + CHUNK_SLOTS as usize).min(m.verdicts.len());
                if lo < hi {
                    rows.push(LedgerRow {
                        contract: c.name.clone(),
                        month: month.to_string(),
                        chunk: i64::from(k),
                        data: m.verdicts[lo..hi].to_vec(),
                    });
                }
            }
        }
        if std::mem::take(&mut self.locations_changed) {
            rows.push(LedgerRow {
                contract: LOCATIONS_ROW.to_string(),
                month: String::new(),
                chunk: -1,
                data: serde_json::to_vec(&self.data.locations).unwrap_or_default(),
            });
        }
        rows.sort_by(|a, b| {
            (&a.contract, &a.month, a.chunk).cmp(&(&b.contract, &b.month, b.chunk))
        });
        LedgerWrite {
            base: self.data.version,
            cursor: self.data.cursor,
            rows,
            reset_contracts: std::mem::take(&mut self.reset),
        }
    }
}
