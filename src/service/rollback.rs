//! Rolling the volume back to a snapshot while it is being served.
//!
//! Every export on the dataset stops admitting NFS calls and the running
//! ones finish (their gates are taken exclusively, in a stable order, so two
//! volume operations cannot deadlock); the dataset is rolled back; every
//! cached descriptor is dropped and the handle index rebuilt from the
//! rolled-back tree; then the exports serve again. Clients see a pause, then
//! the old data; handles of objects that no longer exist are STALE.

use std::time::Instant;

use serde::Serialize;

use super::ServerState;
use crate::dataset::DatasetError;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RollbackReport {
    pub rolled_back_to: String,
    /// How long the exports admitted no call.
    pub paused_ms: u64,
    /// The exports that paused.
    pub exports: Vec<String>,
}

impl ServerState {
    pub async fn rollback(&self, snapshot: &str) -> Result<RollbackReport, DatasetError> {
        let _one_at_a_time = self.volume_ops.lock().await;
        let exports = self.volume_exports();
        let mut quiet = Vec::with_capacity(exports.len());
        for e in &exports {
            quiet.push(e.gate.clone().write_owned().await);
        }
        let started = Instant::now();
        tracing::info!(snapshot, exports = ?exports.iter().map(|e| e.fs.name.as_str()).collect::<Vec<_>>(), "rollback: exports paused");
        let res = self.dataset.snapshot_rollback(snapshot).await;
        // Whatever the outcome, the tree may have changed under the caches:
        // rebuild from what is there now (each export on the pool).
        let client = std::net::IpAddr::from([0, 0, 0, 0]);
        for e in &exports {
            let fs = e.fs.clone();
            let rebuilt = self.pool.run(client, move || fs.invalidate_all()).await;
            if rebuilt.is_none() {
                tracing::error!(export = %e.fs.name, "rebuilding the handle index after the rollback failed (a bug); handles resolve by walking on use");
            }
        }
        drop(quiet);
        let paused_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            snapshot,
            paused_ms,
            ok = res.is_ok(),
            "rollback: exports serving again"
        );
        res.map(|()| RollbackReport {
            rolled_back_to: snapshot.to_string(),
            paused_ms,
            exports: exports.iter().map(|e| e.fs.name.clone()).collect(),
        })
    }
}
