//! The network status monitor (NSM, program 100024), server side, and the
//! record of which clients hold locks.
//!
//! Locks live in memory, so a restart loses them; NLM's recovery protocol
//! gets them back: at start-up volnfs tells every client that held a lock
//! (SM_NOTIFY to the client's statd, found through the client's portmapper),
//! and for a grace period only reclaims are granted while those clients
//! re-send their locks. Which clients to tell is kept in `state_dir`
//! (`nsm.json`), written before a client's first lock is granted, so it is
//! there even after `kill -9`. Conversely, a client that reboots tells us
//! with SM_NOTIFY (or NLM FREE_ALL), and its locks are released — only those
//! of the address the notice comes from, so no client can free another's.
//!
//! We never monitor hosts for others: SM_MON is refused (STAT_FAIL).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub const PROGRAM: u32 = 100024;
pub const VERSION: u32 = 1;
pub const SM_NOTIFY: u32 = 6;
/// SM_MAXSTRLEN.
pub const MAX_NAME: u32 = 1024;
/// The state file is small; anything bigger is not ours.
const MAX_STATE_FILE: u64 = 4 << 20;

/// A client that held locks, and the address it reached us on (the name its
/// statd monitors us by).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub client: IpAddr,
    pub server: IpAddr,
    /// The client's NLM caller name, for the log.
    pub name: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    /// Our NSM state number: odd while up, bumped by two at every start.
    state: u32,
    peers: Vec<Peer>,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("writing the lock-holder record {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub struct Monitor {
    path: Option<PathBuf>,
    state: u32,
    peers: Mutex<BTreeMap<IpAddr, Peer>>,
}

impl Monitor {
    /// Loads the record of the previous run, bumps the state number and
    /// returns the monitor with the clients to notify. Without a state
    /// directory nothing is remembered across restarts.
    pub fn open(state_dir: Option<&Path>) -> (Monitor, Vec<Peer>) {
        let Some(dir) = state_dir else {
            return (
                Monitor {
                    path: None,
                    state: 1,
                    peers: Mutex::new(BTreeMap::new()),
                },
                Vec::new(),
            );
        };
        let path = dir.join("nsm.json");
        let old = read_state(&path);
        let state = (old.state | 1).wrapping_add(2);
        let peers: BTreeMap<IpAddr, Peer> = old.peers.into_iter().map(|p| (p.client, p)).collect();
        let notify: Vec<Peer> = peers.values().cloned().collect();
        let m = Monitor {
            path: Some(path),
            state,
            peers: Mutex::new(peers),
        };
        if let Err(e) = m.save(&m.lock()) {
            tracing::error!(error = %crate::error_chain(&e), "lock recovery record not written: clients may not be told to reclaim their locks after the next restart");
        }
        (m, notify)
    }

    pub fn state(&self) -> u32 {
        self.state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<IpAddr, Peer>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a client that is about to hold a lock; writes the record
    /// (synchronously, fsync'd) the first time it is seen.
    pub fn record(&self, peer: Peer) -> Result<(), MonitorError> {
        let mut g = self.lock();
        if g.get(&peer.client) == Some(&peer) {
            return Ok(());
        }
        g.insert(peer.client, peer);
        self.save(&g)
    }

    /// Keeps only these clients (those holding locks now).
    pub fn retain(&self, holders: &[IpAddr]) {
        let mut g = self.lock();
        let before = g.len();
        g.retain(|ip, _| holders.contains(ip));
        if g.len() != before {
            if let Err(e) = self.save(&g) {
                tracing::warn!(error = %crate::error_chain(&e), "lock recovery record not updated");
            }
        }
    }

    fn save(&self, peers: &BTreeMap<IpAddr, Peer>) -> Result<(), MonitorError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = StateFile {
            state: self.state,
            peers: peers.values().cloned().collect(),
        };
        write_atomically(path, &file).map_err(|source| MonitorError::Write {
            path: path.clone(),
            source,
        })
    }
}

fn read_state(path: &Path) -> StateFile {
    use std::io::Read;
    let mut text = String::new();
    match std::fs::File::open(path) {
        Ok(f) => {
            if let Err(e) = f.take(MAX_STATE_FILE).read_to_string(&mut text) {
                tracing::warn!(path = %path.display(), error = %e, "lock recovery record unreadable; starting without it");
                return StateFile::default();
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return StateFile::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "lock recovery record unreadable; starting without it");
            return StateFile::default();
        }
    }
    serde_json::from_str(&text).unwrap_or_else(|e| {
        tracing::warn!(path = %path.display(), error = %e, "lock recovery record damaged; starting without it (clients that held locks are not told to reclaim them)");
        StateFile::default()
    })
}

fn write_atomically(path: &Path, file: &StateFile) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(file).map_err(std::io::Error::other)?;
    crate::write_private_file_atomically(path, "json.tmp", &bytes)
}

/// SM_NOTIFY arguments (`stat_chge`): our name as the client knows us and
/// our new state.
pub fn notify_args(server_name: &str, state: u32) -> Vec<u8> {
    let mut w = crate::xdr::Writer::new();
    w.string(server_name.as_bytes());
    w.u32(state);
    w.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(c: &str) -> Peer {
        Peer {
            client: c.parse().unwrap(),
            server: "10.0.0.1".parse().unwrap(),
            name: "guest".into(),
        }
    }

    #[test]
    fn clients_that_held_locks_are_notified_after_a_restart_with_a_new_state() {
        let dir = tempfile::tempdir().unwrap();
        let (m, notify) = Monitor::open(Some(dir.path()));
        assert!(notify.is_empty());
        let s1 = m.state();
        assert_eq!(s1 % 2, 1);
        m.record(peer("10.0.0.2")).unwrap();
        m.record(peer("10.0.0.3")).unwrap();
        drop(m); // as after kill -9: nothing else was written
        let (m, notify) = Monitor::open(Some(dir.path()));
        assert_eq!(notify, vec![peer("10.0.0.2"), peer("10.0.0.3")]);
        assert!(m.state() > s1 && m.state() % 2 == 1);
        m.retain(&["10.0.0.3".parse().unwrap()]);
        let (_, notify) = Monitor::open(Some(dir.path()));
        assert_eq!(notify, vec![peer("10.0.0.3")]);
    }

    #[test]
    fn a_damaged_record_is_ignored_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nsm.json"), b"{not json").unwrap();
        let (m, notify) = Monitor::open(Some(dir.path()));
        assert!(notify.is_empty());
        m.record(peer("10.0.0.2")).unwrap();
        assert_eq!(Monitor::open(Some(dir.path())).1.len(), 1);
    }
}
