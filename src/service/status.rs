//! What `status` and `clients.list` report.

use super::ServerState;

impl ServerState {
    pub fn clients_json(&self) -> Vec<serde_json::Value> {
        let mounts = self.exports.mounts();
        let mut out: Vec<serde_json::Value> = self
            .clients
            .list()
            .into_iter()
            .map(|(peer, since)| {
                let since = since
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let mounted: Vec<&str> = mounts.iter().filter(|m| m.client == peer.ip()).map(|m| m.export.as_str()).collect();
                serde_json::json!({"address": peer.ip().to_string(), "port": peer.port(), "connected_since": since, "mounts": mounted})
            })
            .collect();
        out.sort_by(|a, b| a["address"].as_str().cmp(&b["address"].as_str()));
        out
    }

    pub async fn status(&self) -> serde_json::Value {
        let space = self.dataset.space().await.ok();
        let snapshots = self.dataset.snapshots().await.ok().map(|s| s.len());
        let exports: Vec<serde_json::Value> = self
            .exports
            .all()
            .iter()
            .map(|e| {
                let p = e.policy.read().unwrap_or_else(|p| p.into_inner()).clone();
                let rules: Vec<serde_json::Value> = p
                    .rules
                    .iter()
                    .map(|r| serde_json::json!({"match": r.cidr.to_string(), "access": r.access, "squash": r.squash}))
                    .collect();
                // How the export's filesystem is served: whether its calls
                // may be answered from the caches without a thread hop
                // (`nowait`) and run on a polling session's own thread
                // (`local`); both off on FUSE and network filesystems.
                let serving = serde_json::json!({"local": e.fs.local, "nowait": e.fs.nowait});
                serde_json::json!({"name": e.fs.name, "path": e.fs.path, "clients": rules, "filesystem": serving})
            })
            .collect();
        let procedures: serde_json::Map<String, serde_json::Value> = self
            .nfs
            .counts()
            .into_iter()
            .map(|(n, c)| (n.to_string(), c.into()))
            .collect();
        let mounts: Vec<serde_json::Value> = self
            .exports
            .mounts()
            .into_iter()
            .map(|m| serde_json::json!({"client": m.client.to_string(), "export": m.export}))
            .collect();
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "platform": crate::sys::PLATFORM,
            "uptime_seconds": self.started.elapsed().as_secs(),
            "exports": exports,
            "dataset": {"kind": self.dataset.kind(), "name": self.dataset.name()},
            "size": space.map(|s| s.size),
            "used": space.map(|s| s.used),
            "available": space.map(|s| s.available),
            "snapshot_count": snapshots,
            "connected_clients": self.clients.list().len(),
            "mounts": mounts,
            "procedures": procedures,
            "locks_held": self.nlm.as_ref().map(|n| n.held()),
            "io_pool": self.pool.stats(),
            "answered_in_line": self.nfs.answered_in_line.load(std::sync::atomic::Ordering::Relaxed),
            "busy_polling": crate::rpc::server::polling_stats(),
        })
    }
}
