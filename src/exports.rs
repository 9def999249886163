//! The table of served exports: their filesystems, policies and the mount
//! table, shared by MOUNT, NFS and the transports' accept-time check.
//!
//! Policies can be replaced at run time (`exports.reload`, SIGHUP); the
//! filesystems stay open.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};

use crate::access::{Access, ExportPolicy, Rights, Squash};
use crate::fs::handle::Refusal;
use crate::fs::{Cred, ExportFs, FileHandle};
use crate::rpc::msg::Auth;

pub struct Export {
    pub fs: Arc<ExportFs>,
    pub policy: RwLock<ExportPolicy>,
    /// NFS calls hold it shared while they run; a rollback holds it
    /// exclusively, which stops admitting calls and waits for the running
    /// ones to finish (clients see a pause, not an error).
    pub gate: Arc<tokio::sync::RwLock<()>>,
    /// The ZFS dataset this export serves (config `exports[].dataset`).
    pub dataset: Option<String>,
}

impl Export {
    pub fn rights_for(&self, peer: SocketAddr) -> Option<Rights> {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .rights_for_peer(peer.ip(), peer.port())
    }

    /// The credential operations run with, after squashing.
    pub fn effective_cred(&self, auth: &Auth, rights: &Rights) -> Cred {
        let p = self.policy.read().unwrap_or_else(|p| p.into_inner());
        squash(auth, rights.squash, p.anon_uid, p.anon_gid)
    }
}

/// Applies a squash mode to a wire credential (exports(5) semantics).
pub fn squash(auth: &Auth, mode: Squash, anon_uid: u32, anon_gid: u32) -> Cred {
    let anon = Cred::new(anon_uid, anon_gid, &[]);
    match (auth, mode) {
        (Auth::None, _) | (_, Squash::AllSquash) => anon,
        (Auth::Sys(s), Squash::NoRootSquash) => Cred::new(s.uid, s.gid, s.groups()),
        (Auth::Sys(s), Squash::RootSquash) => {
            if s.uid != 0 && s.gid != 0 && !s.groups().contains(&0) {
                return Cred::new(s.uid, s.gid, s.groups());
            }
            let uid = if s.uid == 0 { anon_uid } else { s.uid };
            let gid = if s.gid == 0 { anon_gid } else { s.gid };
            let groups: Vec<u32> = s
                .groups()
                .iter()
                .map(|&g| if g == 0 { anon_gid } else { g })
                .collect();
            Cred::new(uid, gid, &groups)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub client: IpAddr,
    pub export: String,
}

pub struct ExportTable {
    exports: Vec<Arc<Export>>,
    mounts: Mutex<Vec<MountEntry>>,
    /// Clients whose MNT was refused, so each is logged once (bounded).
    mnt_refused: Mutex<std::collections::HashSet<IpAddr>>,
}

impl ExportTable {
    pub fn new(exports: Vec<Arc<Export>>) -> Self {
        ExportTable {
            exports,
            mounts: Mutex::new(Vec::new()),
            mnt_refused: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// True the first time a MNT from `client` is refused: refusals are
    /// logged once per client, not once per call.
    pub fn first_mnt_refusal(&self, client: IpAddr) -> bool {
        let mut r = self.mnt_refused.lock().unwrap_or_else(|p| p.into_inner());
        r.len() < 4096 && r.insert(client)
    }

    pub fn all(&self) -> &[Arc<Export>] {
        &self.exports
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Export>> {
        self.exports.iter().find(|e| e.fs.name == name)
    }

    /// Finds the export a wire handle belongs to and authenticates it.
    /// The export a wire handle belongs to, the tree within it (the live
    /// export or one of its snapshots, by the handle's filesystem id), and
    /// the authenticated handle.
    pub fn resolve_handle(
        &self,
        bytes: &[u8],
    ) -> Result<(&Arc<Export>, Arc<ExportFs>, FileHandle), Refusal> {
        let id = FileHandle::peek_export_id(bytes).map_err(|_| Refusal::Bad)?;
        let export = self
            .exports
            .iter()
            .find(|e| e.fs.id == id)
            .ok_or(Refusal::Stale)?;
        match export.fs.decode_handle(bytes) {
            Ok(fh) => Ok((export, export.fs.clone(), fh)),
            Err(Refusal::Stale) => {
                // A handle of one of the export's snapshots, or of one gone.
                let fsid = FileHandle::decode(bytes, export.fs.key())
                    .map_err(|_| Refusal::Bad)?
                    .fsid;
                let snap = export.fs.snapshot_tree(fsid).ok_or(Refusal::Stale)?;
                let fh = snap.decode_handle(bytes)?;
                Ok((export, snap, fh))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether any export admits this address (checked at accept time).
    pub fn admits(&self, ip: IpAddr) -> bool {
        self.exports.iter().any(|e| {
            e.policy
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .rights_for(ip)
                .is_some()
        })
    }

    pub fn add_mount(&self, client: IpAddr, export: &str) {
        let mut m = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
        let e = MountEntry {
            client,
            export: export.to_string(),
        };
        if !m.contains(&e) {
            // Bounded: one entry per (client, export) pair that passed policy.
            m.push(e);
        }
    }

    pub fn remove_mount(&self, client: IpAddr, export: &str) {
        let mut m = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|e| !(e.client == client && e.export == export));
    }

    pub fn remove_all_mounts(&self, client: IpAddr) {
        let mut m = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|e| e.client != client);
    }

    pub fn mounts(&self) -> Vec<MountEntry> {
        self.mounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// True when a procedure that modifies the export is refused for `rights`.
pub fn read_only(rights: &Rights) -> bool {
    rights.access == Access::Ro
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::msg::AuthSys;

    #[test]
    fn root_squash_maps_root_and_group_zero() {
        let root = Auth::Sys(AuthSys::new(0, 0, &[0, 5]));
        let c = squash(&root, Squash::RootSquash, 65534, 65533);
        assert_eq!((c.uid, c.gid), (65534, 65533));
        assert_eq!(c.groups(), &[65533, 5]);
        let user = Auth::Sys(AuthSys::new(1000, 100, &[5]));
        assert_eq!(
            squash(&user, Squash::RootSquash, 1, 1),
            Cred::new(1000, 100, &[5])
        );
    }

    #[test]
    fn all_squash_and_auth_none_become_anonymous() {
        let user = Auth::Sys(AuthSys::new(1000, 100, &[]));
        assert_eq!(squash(&user, Squash::AllSquash, 7, 8), Cred::new(7, 8, &[]));
        assert_eq!(
            squash(&Auth::None, Squash::NoRootSquash, 7, 8),
            Cred::new(7, 8, &[])
        );
    }

    #[test]
    fn no_root_squash_keeps_root() {
        let root = Auth::Sys(AuthSys::new(0, 0, &[]));
        assert_eq!(squash(&root, Squash::NoRootSquash, 7, 8).uid, 0);
    }
}
