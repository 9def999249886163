//! Duplicate-request cache: a retransmitted non-idempotent call gets the
//! reply of the original, byte for byte, instead of being executed twice.
//!
//! Without it, a client whose REMOVE reply was lost retransmits and gets
//! NOENT for a file it did remove; a retransmitted exclusive CREATE or
//! RENAME fails the same way. Entries are keyed by client address, xid,
//! program, version, procedure and a hash of the arguments, so two clients
//! with colliding xids never see each other's replies, and a client that
//! reuses an xid for a different call is not answered from the cache.
//! Memory is bounded by an entry count and a byte budget, oldest first out.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub client: IpAddr,
    pub xid: u32,
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
    pub args_hash: u64,
}

impl Key {
    pub fn new(client: IpAddr, xid: u32, prog: u32, vers: u32, proc_: u32, args: &[u8]) -> Key {
        // Like knfsd, hash a bounded prefix plus the length: enough to tell
        // calls apart, and a 1 MiB WRITE costs no more than a REMOVE.
        let mut h = siphasher::sip::SipHasher13::new_with_keys(0x0064_7263, 0x006b_6579);
        args[..args.len().min(512)].hash(&mut h);
        args.len().hash(&mut h);
        Key {
            client,
            xid,
            prog,
            vers,
            proc_,
            args_hash: h.finish(),
        }
    }
}

enum Entry {
    InProgress,
    Done(Arc<Vec<u8>>),
}

struct Inner {
    map: HashMap<Key, Entry>,
    order: VecDeque<Key>,
    bytes: usize,
}

pub struct ReplyCache {
    inner: Mutex<Inner>,
    max_entries: usize,
    max_bytes: usize,
}

/// What to do with an incoming call.
pub enum Lookup {
    /// First time seen: execute it, then `Pending::finish`.
    Execute(Pending),
    /// The original is still executing: send nothing, the client will retry.
    InProgress,
    /// Send this reply again.
    Replay(Arc<Vec<u8>>),
}

/// An executing call's slot; dropped without `finish` (the task failed),
/// the slot is released so a retransmission executes again.
pub struct Pending {
    cache: Arc<ReplyCache>,
    key: Key,
    done: bool,
}

impl Pending {
    pub fn finish(mut self, reply: &[u8]) {
        self.done = true;
        self.cache.store(self.key, reply);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            let mut g = self.cache.lock();
            if matches!(g.map.get(&self.key), Some(Entry::InProgress)) {
                g.map.remove(&self.key);
            }
        }
    }
}

impl ReplyCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        ReplyCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
            }),
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn begin(self: &Arc<Self>, key: Key) -> Lookup {
        let mut g = self.lock();
        match g.map.get(&key) {
            Some(Entry::InProgress) => Lookup::InProgress,
            Some(Entry::Done(r)) => Lookup::Replay(r.clone()),
            None => {
                g.map.insert(key, Entry::InProgress);
                Lookup::Execute(Pending {
                    cache: self.clone(),
                    key,
                    done: false,
                })
            }
        }
    }

    fn store(&self, key: Key, reply: &[u8]) {
        let mut g = self.lock();
        g.map.insert(key, Entry::Done(Arc::new(reply.to_vec())));
        g.order.push_back(key);
        g.bytes += reply.len();
        while g.order.len() > self.max_entries || g.bytes > self.max_bytes {
            let Some(old) = g.order.pop_front() else {
                break;
            };
            if let Some(Entry::Done(r)) = g.map.remove(&old) {
                g.bytes = g.bytes.saturating_sub(r.len());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str, xid: u32, args: &[u8]) -> Key {
        Key::new(ip.parse().unwrap(), xid, 100003, 3, 12, args)
    }

    #[test]
    fn retransmission_is_replayed() {
        let c = Arc::new(ReplyCache::new(10, 1 << 20));
        match c.begin(key("10.0.0.1", 1, b"rm a")) {
            Lookup::Execute(p) => p.finish(b"reply-1"),
            _ => panic!("first call must execute"),
        }
        let again = c.begin(key("10.0.0.1", 1, b"rm a"));
        match again {
            Lookup::Replay(r) => assert_eq!(&r[..], b"reply-1"),
            _ => panic!("retransmission must replay"),
        };
    }

    #[test]
    fn colliding_xids_of_two_clients_are_separate() {
        let c = Arc::new(ReplyCache::new(10, 1 << 20));
        if let Lookup::Execute(p) = c.begin(key("10.0.0.1", 1, b"x")) {
            p.finish(b"a");
        }
        assert!(matches!(
            c.begin(key("10.0.0.2", 1, b"x")),
            Lookup::Execute(_)
        ));
    }

    #[test]
    fn same_xid_with_other_arguments_executes() {
        let c = Arc::new(ReplyCache::new(10, 1 << 20));
        if let Lookup::Execute(p) = c.begin(key("10.0.0.1", 1, b"x")) {
            p.finish(b"a");
        }
        assert!(matches!(
            c.begin(key("10.0.0.1", 1, b"y")),
            Lookup::Execute(_)
        ));
    }

    #[test]
    fn in_progress_duplicates_are_dropped_and_abandoned_slots_freed() {
        let c = Arc::new(ReplyCache::new(10, 1 << 20));
        let p = match c.begin(key("10.0.0.1", 1, b"x")) {
            Lookup::Execute(p) => p,
            _ => panic!(),
        };
        assert!(matches!(
            c.begin(key("10.0.0.1", 1, b"x")),
            Lookup::InProgress
        ));
        drop(p);
        assert!(matches!(
            c.begin(key("10.0.0.1", 1, b"x")),
            Lookup::Execute(_)
        ));
    }

    #[test]
    fn memory_is_bounded() {
        let c = Arc::new(ReplyCache::new(100, 1000));
        for i in 0..10_000u32 {
            if let Lookup::Execute(p) = c.begin(key("10.0.0.1", i, b"x")) {
                p.finish(&[0u8; 50]);
            }
        }
        assert!(c.len() <= 20);
    }
}
