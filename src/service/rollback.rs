//! Rolling the volume back to a snapshot while it is being served.
//!
//! Every export on the dataset stops admitting NFS calls and the running
//! ones finish (their gates are taken exclusively, in a stable order, so two
//! volume operations cannot deadlock); the dataset is rolled back; every
//! cached descriptor is dropped and the handle index marked unverified (its
//! entries are checked on use, the tree walked on the first miss: the pause
//! does not grow with the volume); then the exports serve again. Clients see a pause, then
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
    /// Destroys a snapshot: every export of the volume lets go of the
    /// snapshot's tree first (held descriptors would keep it busy), so
    /// clients browsing it get STALE from then on.
    pub async fn delete_snapshot(&self, snapshot: &str) -> Result<(), DatasetError> {
        for e in self.volume_exports() {
            e.fs.forget_snapshot(snapshot);
        }
        self.dataset.snapshot_delete(snapshot).await
    }

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
        // forget them (each export on the pool: it may wait for the index).
        let client = std::net::IpAddr::from([0, 0, 0, 0]);
        for e in &exports {
            let fs = e.fs.clone();
            let rebuilt = self.pool.run(client, move || fs.invalidate_all()).await;
            if rebuilt.is_none() {
                tracing::error!(export = %e.fs.name, "dropping caches after the rollback failed (a bug); restart volnfs");
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, RwLock};

    use async_trait::async_trait;
    use tokio::sync::Notify;

    use crate::dataset::{Dataset, DatasetError, Snapshot, Space};
    use crate::exports::{Export, ExportTable};
    use crate::fs::index::Store;
    use crate::fs::{ExportFs, HandleKey};
    use crate::iopool::IoPool;
    use crate::service::ServerState;

    /// A dataset whose rollback waits until the test lets it finish: the
    /// seam to observe the pause. The real path (zfs rollback under two
    /// exports) is tests/zfs.
    struct HeldRollback {
        started: Notify,
        finish: Notify,
    }

    #[async_trait]
    impl Dataset for HeldRollback {
        fn kind(&self) -> &'static str {
            "zfs"
        }
        fn name(&self) -> String {
            "zones/z/data/vol".into()
        }
        async fn space(&self) -> Result<Space, DatasetError> {
            Err(DatasetError::Internal("unused".into()))
        }
        async fn snapshots(&self) -> Result<Vec<Snapshot>, DatasetError> {
            Ok(Vec::new())
        }
        async fn snapshot_create(&self, _: &str) -> Result<Snapshot, DatasetError> {
            Err(DatasetError::Internal("unused".into()))
        }
        async fn snapshot_delete(&self, _: &str) -> Result<(), DatasetError> {
            Ok(())
        }
        async fn snapshot_rollback(&self, _: &str) -> Result<(), DatasetError> {
            self.started.notify_one();
            self.finish.notified().await;
            Ok(())
        }
        async fn quota(&self) -> Result<Option<u64>, DatasetError> {
            Ok(None)
        }
        async fn set_quota(&self, _: u64) -> Result<(), DatasetError> {
            Ok(())
        }
    }

    fn export(name: &str, dir: &std::path::Path, dataset: Option<&str>) -> Arc<Export> {
        let fs = ExportFs::open(
            name,
            dir,
            HandleKey([1; 16]),
            Store::memory(),
            true,
            Default::default(),
        )
        .unwrap();
        Arc::new(Export {
            fs: Arc::new(fs),
            policy: RwLock::new(crate::access::ExportPolicy {
                rules: Vec::new(),
                anon_uid: 65534,
                anon_gid: 65534,
                secure: false,
            }),
            gate: Default::default(),
            dataset: dataset.map(String::from),
        })
    }

    #[tokio::test]
    async fn a_rollback_pauses_every_export_on_the_dataset_and_only_those() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let vol = Some("zones/z/data/vol");
        let table = Arc::new(ExportTable::new(vec![
            export("/exports/a", a.path(), vol),
            export("/exports/b", b.path(), vol),
            export("/exports/c", c.path(), Some("zones/z/data/other")),
        ]));
        let pool = IoPool::new(Default::default());
        let dataset = Arc::new(HeldRollback {
            started: Notify::new(),
            finish: Notify::new(),
        });
        let state = Arc::new(ServerState {
            exports: table.clone(),
            nfs: crate::nfs3::Nfs3::new(table.clone(), [0; 8], pool.clone()),
            clients: Default::default(),
            dataset: dataset.clone(),
            config_path: None,
            started: std::time::Instant::now(),
            nlm: None,
            pool,
            volume_ops: Default::default(),
        });
        let s = state.clone();
        let rollback = tokio::spawn(async move { s.rollback("daily").await });
        dataset.started.notified().await;
        let gates: Vec<bool> = table
            .all()
            .iter()
            .map(|e| e.gate.try_read().is_ok())
            .collect();
        assert_eq!(
            gates,
            [false, false, true],
            "a and b paused, c (another dataset) serving"
        );
        dataset.finish.notify_one();
        let mut report = rollback.await.unwrap().unwrap();
        report.exports.sort();
        assert_eq!(report.exports, ["/exports/a", "/exports/b"]);
        assert!(
            table.all().iter().all(|e| e.gate.try_read().is_ok()),
            "all serving again"
        );
    }
}
