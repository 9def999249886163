//! The server as the control socket and the signal handlers see it: what is
//! served, how it is doing, and the operations on it that are not NFS
//! calls (reload the client rules, roll the volume back). The control
//! socket only translates requests into these calls.

mod reload;
mod rollback;
mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub use rollback::RollbackReport;

use crate::dataset::Dataset;
use crate::exports::{Export, ExportTable};
use crate::iopool::IoPool;
use crate::nfs3::Nfs3;
use crate::nlm::Nlm;
use crate::rpc::server::ClientRegistry;

pub struct ServerState {
    pub exports: Arc<ExportTable>,
    pub nfs: Arc<Nfs3>,
    pub clients: Arc<ClientRegistry>,
    /// The volume's dataset (the first export's).
    pub dataset: Arc<dyn Dataset>,
    /// The config file to re-read on reload (none in zero-config mode).
    pub config_path: Option<PathBuf>,
    pub started: Instant,
    /// The lock manager, when served.
    pub nlm: Option<Arc<Nlm>>,
    pub pool: IoPool,
    /// One volume operation (rollback) at a time.
    pub(crate) volume_ops: tokio::sync::Mutex<()>,
}

impl ServerState {
    /// The exports that live on the volume's dataset: every export
    /// configured with the dataset's name, and every export configured with
    /// no dataset on the same filesystem as one of them (a subdirectory of
    /// the dataset exported separately). A rollback changes all of them at
    /// once.
    pub fn volume_exports(&self) -> Vec<Arc<Export>> {
        let name = self.dataset.name();
        let fsids: Vec<u64> = self
            .exports
            .all()
            .iter()
            .filter(|e| e.dataset.as_deref() == Some(name.as_str()))
            .map(|e| e.fs.fsid)
            .collect();
        let mut on: Vec<Arc<Export>> = self
            .exports
            .all()
            .iter()
            .filter(|e| match e.dataset.as_deref() {
                Some(d) => d == name,
                None => fsids.contains(&e.fs.fsid),
            })
            .cloned()
            .collect();
        // A stable order: two operations take the gates in the same order.
        on.sort_by_key(|e| e.fs.id);
        on
    }
}
