//! A small bounded least-recently-used map from object number to a shared
//! value (open directory and file descriptors).

use std::collections::HashMap;
use std::sync::Arc;

pub struct LruMap<T> {
    map: HashMap<u64, (Arc<T>, u64)>,
    tick: u64,
    cap: usize,
}

impl<T> LruMap<T> {
    pub fn new(cap: usize) -> Self {
        LruMap {
            map: HashMap::new(),
            tick: 0,
            cap: cap.max(8),
        }
    }

    pub fn get(&mut self, key: u64) -> Option<Arc<T>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(&key).map(|e| {
            e.1 = tick;
            e.0.clone()
        })
    }

    pub fn insert(&mut self, key: u64, value: Arc<T>) {
        self.tick += 1;
        self.map.insert(key, (value, self.tick));
        if self.map.len() > self.cap {
            // Evict the oldest eighth in one pass so eviction is amortised.
            let mut ticks: Vec<u64> = self.map.values().map(|e| e.1).collect();
            let n = self.cap / 8;
            ticks.select_nth_unstable(n);
            let threshold = ticks[n];
            self.map.retain(|_, e| e.1 > threshold);
        }
    }

    pub fn remove(&mut self, key: u64) {
        self.map.remove(&key);
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_bounded_and_keeps_recent_entries() {
        let mut m = LruMap::new(64);
        for i in 0..1000u64 {
            m.insert(i, Arc::new(i));
            assert!(m.get(0).is_some() || i > 0);
        }
        assert!(m.len() <= 64);
        assert!(m.get(999).is_some());
    }
}
