//! The channel's decisions, as values: how long to wait before the next
//! connection attempt (capped exponential backoff), which failures are worth
//! a log line (the first of an outage and each change of reason, not every
//! retry), and when a socket at the path is a new one worth trying at once
//! (RFD 69's stat signature). No I/O and no clock: the runner feeds them.

use std::time::Duration;

/// The first wait after a failed attempt.
pub const BACKOFF_START: Duration = Duration::from_millis(100);
/// The longest wait between attempts on the same socket file; a new file at
/// the path (an agent that restarted) is tried at once regardless.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Capped exponential backoff: 100 ms, 200 ms, 400 ms, ... 10 s, 10 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_START,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        d
    }

    /// After a successful connection: start again from the shortest wait.
    pub fn reset(&mut self) {
        self.next = BACKOFF_START;
    }
}

/// A socket file's identity: what RFD 69's metadata agent compares to tell
/// a socket it created from one that replaced it (a new agent, a rollback
/// of the directory). A new file gets a new inode or, when the inode number
/// is reused, a new change time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub ctime: i64,
    pub ctime_nsec: i64,
}

/// Whether the socket now at the path (`now`) differs from the one the
/// last attempt failed on (`failed_on`): then it is tried without waiting
/// out the backoff. Nothing at the path is never new.
pub fn is_new_socket(failed_on: Option<Identity>, now: Option<Identity>) -> bool {
    now.is_some() && now != failed_on
}

/// An outage: the attempts since the last connection, and the reason last
/// logged, so one outage logs once per reason instead of once per retry.
#[derive(Debug, Default)]
pub struct Outage {
    failed: u32,
    logged: Option<&'static str>,
}

impl Outage {
    /// Records a failed attempt for `reason`; true when it should be logged
    /// (the first failure of the outage, or a different reason than the
    /// one logged last).
    pub fn failed(&mut self, reason: &'static str) -> bool {
        self.failed = self.failed.saturating_add(1);
        if self.logged == Some(reason) {
            return false;
        }
        self.logged = Some(reason);
        true
    }

    /// Records a connection; returns how many attempts had failed before it.
    pub fn connected(&mut self) -> u32 {
        std::mem::take(self).failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::default();
        let ms: Vec<u128> = (0..10).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(
            ms,
            [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000]
        );
        b.reset();
        assert_eq!(b.next_delay(), BACKOFF_START);
    }

    #[test]
    fn an_outage_logs_its_first_failure_and_each_new_reason_only() {
        let mut o = Outage::default();
        let logged: Vec<bool> = ["absent", "absent", "absent", "symlink", "symlink", "absent"]
            .iter()
            .map(|r| o.failed(r))
            .collect();
        assert_eq!(logged, [true, false, false, true, false, true]);
        assert_eq!(o.connected(), 6);
        assert!(o.failed("absent"), "a new outage logs again");
        assert_eq!(o.connected(), 1);
    }

    #[test]
    fn only_a_different_socket_is_new() {
        let a = Identity {
            dev: 1,
            ino: 7,
            ctime: 100,
            ctime_nsec: 5,
        };
        let reused_inode = Identity { ctime: 101, ..a };
        assert!(!is_new_socket(Some(a), Some(a)), "the same file");
        assert!(is_new_socket(Some(a), Some(reused_inode)), "inode reused");
        assert!(is_new_socket(None, Some(a)), "appeared");
        assert!(!is_new_socket(Some(a), None), "gone");
        assert!(!is_new_socket(None, None));
    }
}
