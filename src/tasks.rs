//! An owner for background tasks: every task the server spawns belongs to
//! one, and shutdown ends them (the lock manager's callbacks and reboot
//! notifications, control-socket connections).

use std::future::Future;
use std::sync::Mutex;

use tokio::task::JoinSet;

#[derive(Default)]
pub struct Tasks {
    set: Mutex<Option<JoinSet<()>>>,
}

impl Tasks {
    pub fn new() -> Tasks {
        Tasks {
            set: Mutex::new(Some(JoinSet::new())),
        }
    }

    /// Spawns `fut` on the current runtime, owned by this set. After
    /// `shutdown` nothing is spawned any more.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let mut g = self.set.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = g.as_mut() {
            while set.try_join_next().is_some() {}
            set.spawn(fut);
        }
    }

    /// How many are still running.
    pub fn len(&self) -> usize {
        let mut g = self.set.lock().unwrap_or_else(|p| p.into_inner());
        g.as_mut().map_or(0, |s| {
            while s.try_join_next().is_some() {}
            s.len()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops every task (they are retries and notifications: a restart
    /// redoes what matters) and waits until they are gone.
    pub async fn shutdown(&self) {
        let set = self.set.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut set) = set {
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_ends_every_task_and_refuses_new_ones() {
        let t = Tasks::new();
        for _ in 0..3 {
            t.spawn(async { tokio::time::sleep(std::time::Duration::from_secs(3600)).await });
        }
        assert_eq!(t.len(), 3);
        t.shutdown().await;
        assert_eq!(t.len(), 0);
        t.spawn(async {});
        assert_eq!(t.len(), 0);
    }
}
