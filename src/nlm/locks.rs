//! The byte-range lock table behind NLM: pure data, no I/O.
//!
//! POSIX `fcntl` semantics (what NLM carries): a lock belongs to an owner
//! (client address, caller name, svid — the client process), two locks
//! conflict when their ranges overlap, their owners differ and at least one is
//! exclusive; an owner's new lock replaces whatever that owner held in the
//! range (upgrade, downgrade, split), and unlocking a range splits the
//! owner's locks around it. Blocked requests wait in arrival order per file
//! and are granted as soon as nothing conflicts; the caller is told which, so
//! it can send the GRANTED callbacks.
//!
//! The table is bounded: past `max_entries` held locks plus waiters in all, or
//! `max_per_client` of one client address, a request
//! is refused (`NoLocks`) instead of growing memory on a client's say-so.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;

/// Who holds a lock: the client process, as NLM names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    pub client: IpAddr,
    /// The client's `caller_name` (its host name).
    pub caller: Vec<u8>,
    /// The client's lock-owner id (a process or open-file id on the client).
    pub svid: i32,
}

/// A held or requested lock over the inclusive byte range `start..=end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub owner: Owner,
    /// The client's opaque owner handle, returned to TEST callers.
    pub oh: Vec<u8>,
    pub exclusive: bool,
    pub start: u64,
    pub end: u64,
    /// Granted to a waiter by the server, not yet confirmed by the client
    /// (GRANTED callback answered, or the request polled again). A CANCEL of
    /// such a lock releases it: the waiting process has gone.
    pub unconfirmed: bool,
}

/// NLM's (offset, length) with length 0 meaning "to the end of any file",
/// as an inclusive range; a range running past 2^64 is clamped.
pub fn range(offset: u64, len: u64) -> (u64, u64) {
    if len == 0 {
        (offset, u64::MAX)
    } else {
        (offset, offset.saturating_add(len - 1))
    }
}

/// The inverse of [`range`], for the holder returned by TEST.
pub fn offset_len(start: u64, end: u64) -> (u64, u64) {
    if end == u64::MAX {
        (start, 0)
    } else {
        (start, end - start + 1)
    }
}

impl Lock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }

    /// Whether `self` (held) stops `other` (requested) from being granted.
    pub fn conflicts_with(&self, other: &Lock) -> bool {
        self.owner != other.owner
            && (self.exclusive || other.exclusive)
            && self.overlaps(other.start, other.end)
    }

    fn same_request(&self, other: &Lock) -> bool {
        self.owner == other.owner
            && self.exclusive == other.exclusive
            && self.start == other.start
            && self.end == other.end
    }
}

/// A blocked request and what the caller needs to tell its client later.
#[derive(Debug, Clone)]
pub struct Waiter<T> {
    pub lock: Lock,
    pub token: T,
}

#[derive(Debug)]
pub enum LockResult {
    Granted,
    /// Held by someone else; the request did not ask to wait.
    Denied(Lock),
    /// Queued: the client will be called back when it is granted.
    Blocked,
    /// The table is full.
    NoLocks,
}

struct FileLocks<T> {
    held: Vec<Lock>,
    waiting: Vec<Waiter<T>>,
}

impl<T> Default for FileLocks<T> {
    fn default() -> Self {
        FileLocks {
            held: Vec::new(),
            waiting: Vec::new(),
        }
    }
}

impl<T> FileLocks<T> {
    fn conflict(&self, req: &Lock) -> Option<&Lock> {
        self.held.iter().find(|h| h.conflicts_with(req))
    }

    /// Removes `start..=end` from the owner's locks, splitting those that
    /// stick out on either side. Returns the change in the number of locks.
    fn carve(&mut self, owner: &Owner, start: u64, end: u64) -> isize {
        let before = self.held.len() as isize;
        let mut kept = Vec::with_capacity(self.held.len() + 1);
        for l in self.held.drain(..) {
            if l.owner != *owner || !l.overlaps(start, end) {
                kept.push(l);
                continue;
            }
            if l.start < start {
                kept.push(Lock {
                    end: start - 1,
                    ..l.clone()
                });
            }
            if l.end > end {
                kept.push(Lock {
                    start: end + 1,
                    ..l.clone()
                });
            }
        }
        self.held = kept;
        self.held.len() as isize - before
    }

    /// Grants `req` (already known not to conflict): the owner's locks in
    /// the range are replaced by it.
    fn apply(&mut self, req: Lock) -> isize {
        let delta = self.carve(&req.owner, req.start, req.end);
        self.held.push(req);
        delta + 1
    }
}

pub struct LockTable<K, T> {
    files: HashMap<K, FileLocks<T>>,
    /// Held locks plus waiters, across all files, and per client address.
    entries: usize,
    max_entries: usize,
    per_client: HashMap<IpAddr, usize>,
    max_per_client: usize,
}

impl<K: Eq + Hash + Clone, T> LockTable<K, T> {
    /// A table of at most `max_entries` held locks plus waiters, at most
    /// `max_per_client` of them from one client address (so one client cannot
    /// lock everyone else out of the table).
    pub fn new(max_entries: usize, max_per_client: usize) -> Self {
        LockTable {
            files: HashMap::new(),
            entries: 0,
            max_entries,
            per_client: HashMap::new(),
            max_per_client,
        }
    }

    /// Whether `client` may add `n` more entries.
    fn has_room(&self, client: IpAddr, n: usize) -> bool {
        self.entries + n <= self.max_entries
            && self.per_client.get(&client).copied().unwrap_or(0) + n <= self.max_per_client
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Number of held locks (not waiters).
    pub fn held(&self) -> usize {
        self.files.values().map(|f| f.held.len()).sum()
    }

    fn adjust(&mut self, client: IpAddr, delta: isize) {
        self.entries = self.entries.saturating_add_signed(delta);
        let n = self.per_client.entry(client).or_default();
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.per_client.remove(&client);
        }
    }

    fn tidy(&mut self, key: &K) {
        if self
            .files
            .get(key)
            .is_some_and(|f| f.held.is_empty() && f.waiting.is_empty())
        {
            self.files.remove(key);
        }
    }

    /// The lock that would stop `req`, if any (NLM TEST).
    pub fn test(&self, key: &K, req: &Lock) -> Option<Lock> {
        self.files.get(key)?.conflict(req).cloned()
    }

    /// NLM LOCK: grants `req` when nothing conflicts; otherwise queues it
    /// when `wait` carries a callback token, or reports the holder.
    pub fn lock(
        &mut self,
        key: &K,
        req: Lock,
        wait: Option<T>,
    ) -> (LockResult, Vec<(K, Waiter<T>)>) {
        let client = req.owner.client;
        let room_for = |t: &Self, n| t.has_room(client, n);
        let room1 = room_for(self, 1);
        let room2 = room_for(self, 2);
        let file = self.files.entry(key.clone()).or_default();
        if let Some(holder) = file.conflict(&req) {
            let holder = holder.clone();
            let Some(token) = wait else {
                self.tidy(key);
                return (LockResult::Denied(holder), Vec::new());
            };
            // A client polls its blocked request again: keep one waiter.
            if let Some(w) = file.waiting.iter_mut().find(|w| w.lock.same_request(&req)) {
                w.token = token;
                return (LockResult::Blocked, Vec::new());
            }
            if !room1 {
                self.tidy(key);
                return (LockResult::NoLocks, Vec::new());
            }
            file.waiting.push(Waiter { lock: req, token });
            self.adjust(client, 1);
            return (LockResult::Blocked, Vec::new());
        }
        // Re-asking for a lock already held as requested is a no-op that
        // also confirms a grant made while the client waited.
        if let Some(h) = file.held.iter_mut().find(|h| h.same_request(&req)) {
            h.unconfirmed = false;
            return (LockResult::Granted, Vec::new());
        }
        if !room2 {
            self.tidy(key);
            return (LockResult::NoLocks, Vec::new());
        }
        let before = file.waiting.len();
        file.waiting.retain(|w| !w.lock.same_request(&req));
        let removed = (before - file.waiting.len()) as isize;
        let delta = file.apply(req);
        self.adjust(client, delta - removed);
        // A downgrade (exclusive → shared) can let waiters in.
        let woken = self.wake(key);
        (LockResult::Granted, woken)
    }

    /// NLM UNLOCK of the owner's locks in `start..=end`. Returns the waiters
    /// this grants.
    pub fn unlock(&mut self, key: &K, owner: &Owner, start: u64, end: u64) -> Vec<(K, Waiter<T>)> {
        let Some(file) = self.files.get_mut(key) else {
            return Vec::new();
        };
        let delta = file.carve(owner, start, end);
        self.adjust(owner.client, delta);
        self.wake(key)
    }

    /// NLM CANCEL: drops the owner's matching waiter, or a matching lock
    /// granted while it waited and not yet confirmed. Returns whether one
    /// was found, and the waiters a released lock grants.
    pub fn cancel(&mut self, key: &K, req: &Lock) -> (bool, Vec<(K, Waiter<T>)>) {
        let Some(file) = self.files.get_mut(key) else {
            return (false, Vec::new());
        };
        if let Some(i) = file.waiting.iter().position(|w| w.lock.same_request(req)) {
            file.waiting.remove(i);
            self.adjust(req.owner.client, -1);
            self.tidy(key);
            return (true, Vec::new());
        }
        if let Some(i) = file
            .held
            .iter()
            .position(|h| h.unconfirmed && h.same_request(req))
        {
            file.held.remove(i);
            self.adjust(req.owner.client, -1);
            return (true, self.wake(key));
        }
        (false, Vec::new())
    }

    /// The client confirmed (or refused) a lock granted while it waited.
    pub fn confirm(&mut self, key: &K, lock: &Lock, accepted: bool) -> Vec<(K, Waiter<T>)> {
        let Some(file) = self.files.get_mut(key) else {
            return Vec::new();
        };
        let Some(i) = file
            .held
            .iter()
            .position(|h| h.unconfirmed && h.same_request(lock))
        else {
            return Vec::new();
        };
        if accepted {
            file.held[i].unconfirmed = false;
            return Vec::new();
        }
        file.held.remove(i);
        self.adjust(lock.owner.client, -1);
        self.wake(key)
    }

    /// Drops every lock and waiter of a client address (it rebooted, or
    /// said FREE_ALL). Returns the waiters of others this grants.
    pub fn release_client(&mut self, client: IpAddr) -> Vec<(K, Waiter<T>)> {
        let mut removed = 0usize;
        let mut touched = Vec::new();
        for (key, file) in self.files.iter_mut() {
            let before = file.held.len() + file.waiting.len();
            file.held.retain(|l| l.owner.client != client);
            file.waiting.retain(|w| w.lock.owner.client != client);
            let n = before - file.held.len() - file.waiting.len();
            if n > 0 {
                removed += n;
                touched.push(key.clone());
            }
        }
        self.adjust(client, -(removed as isize));
        let mut woken = Vec::new();
        for key in touched {
            woken.extend(self.wake(&key));
        }
        woken
    }

    /// Addresses of the clients holding locks or waiting for one.
    pub fn clients(&self) -> Vec<IpAddr> {
        self.per_client.keys().copied().collect()
    }

    /// Addresses of the clients holding at least one lock.
    pub fn holders(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self
            .files
            .values()
            .flat_map(|f| f.held.iter().map(|l| l.owner.client))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Grants, in arrival order, every waiter of the file that no longer
    /// conflicts; they become unconfirmed locks.
    fn wake(&mut self, key: &K) -> Vec<(K, Waiter<T>)> {
        let mut granted = Vec::new();
        let mut deltas = Vec::new();
        if let Some(file) = self.files.get_mut(key) {
            let mut i = 0;
            while i < file.waiting.len() {
                if file.conflict(&file.waiting[i].lock).is_some() {
                    i += 1;
                    continue;
                }
                let w = file.waiting.remove(i);
                let mut lock = w.lock.clone();
                lock.unconfirmed = true;
                deltas.push((w.lock.owner.client, file.apply(lock) - 1));
                granted.push((key.clone(), w));
            }
        }
        for (client, delta) in deltas {
            self.adjust(client, delta);
        }
        self.tidy(key);
        granted
    }
}

#[cfg(test)]
mod tests;
