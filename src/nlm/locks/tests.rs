use super::*;

fn owner(ip: &str, svid: i32) -> Owner {
    Owner {
        client: ip.parse().unwrap(),
        caller: b"host".to_vec(),
        svid,
    }
}

fn lk(o: &Owner, exclusive: bool, offset: u64, len: u64) -> Lock {
    let (start, end) = range(offset, len);
    Lock {
        owner: o.clone(),
        oh: vec![1, 2, 3],
        exclusive,
        start,
        end,
        unconfirmed: false,
    }
}

type Table = LockTable<u32, &'static str>;

#[test]
fn exclusive_locks_of_two_owners_conflict_and_shared_ones_do_not() {
    let (a, b) = (owner("10.0.0.1", 1), owner("10.0.0.2", 1));
    let mut t = Table::new(100, 100);
    assert!(matches!(
        t.lock(&1, lk(&a, false, 0, 10), None).0,
        LockResult::Granted
    ));
    assert!(matches!(
        t.lock(&1, lk(&b, false, 5, 10), None).0,
        LockResult::Granted
    ));
    let (r, _) = t.lock(&1, lk(&b, true, 0, 1), None);
    match r {
        LockResult::Denied(h) => assert_eq!((h.owner, h.start, h.end), (a.clone(), 0, 9)),
        other => panic!("{other:?}"),
    }
    // Another file, or a range beyond the lock, is free.
    assert!(matches!(
        t.lock(&2, lk(&b, true, 0, 0), None).0,
        LockResult::Granted
    ));
    assert!(matches!(
        t.lock(&1, lk(&b, true, 15, 1), None).0,
        LockResult::Granted
    ));
}

#[test]
fn the_same_owner_never_conflicts_with_itself_and_upgrades_in_place() {
    let a = owner("10.0.0.1", 7);
    let b = owner("10.0.0.1", 8); // same client, other process
    let mut t = Table::new(100, 100);
    t.lock(&1, lk(&a, false, 0, 100), None);
    assert!(matches!(
        t.lock(&1, lk(&a, true, 10, 10), None).0,
        LockResult::Granted
    ));
    // a now holds shared 0..9, exclusive 10..19, shared 20..99
    assert_eq!(t.held(), 3);
    assert!(t.test(&1, &lk(&b, false, 0, 10)).is_none());
    assert_eq!(t.test(&1, &lk(&b, false, 12, 1)).unwrap().start, 10);
    assert!(t.test(&1, &lk(&b, false, 20, 80)).is_none());
    assert!(t.test(&1, &lk(&b, true, 20, 80)).is_some());
}

#[test]
fn unlocking_the_middle_of_a_lock_splits_it() {
    let (a, b) = (owner("10.0.0.1", 1), owner("10.0.0.2", 1));
    let mut t = Table::new(100, 100);
    t.lock(&1, lk(&a, true, 0, 0), None); // to EOF
    t.unlock(&1, &a, 100, 199);
    assert_eq!(t.held(), 2);
    assert!(t.test(&1, &lk(&b, true, 100, 100)).is_none());
    assert!(t.test(&1, &lk(&b, true, 99, 1)).is_some());
    assert!(t.test(&1, &lk(&b, true, 200, 1)).is_some());
    assert!(t.test(&1, &lk(&b, true, u64::MAX - 1, 1)).is_some());
    t.unlock(&1, &a, 0, u64::MAX);
    assert_eq!((t.held(), t.entries()), (0, 0));
}

#[test]
fn a_blocked_request_is_granted_in_order_when_the_holder_unlocks() {
    let (a, b, c) = (
        owner("10.0.0.1", 1),
        owner("10.0.0.2", 1),
        owner("10.0.0.3", 1),
    );
    let mut t = Table::new(100, 100);
    t.lock(&1, lk(&a, true, 0, 0), None);
    assert!(matches!(
        t.lock(&1, lk(&b, true, 0, 0), Some("b")).0,
        LockResult::Blocked
    ));
    assert!(matches!(
        t.lock(&1, lk(&c, true, 0, 0), Some("c")).0,
        LockResult::Blocked
    ));
    // polling again does not queue twice
    assert!(matches!(
        t.lock(&1, lk(&b, true, 0, 0), Some("b2")).0,
        LockResult::Blocked
    ));
    assert_eq!(t.entries(), 3);
    let woken = t.unlock(&1, &a, 0, u64::MAX);
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].1.token, "b2");
    assert!(t.test(&1, &lk(&c, true, 0, 0)).unwrap().unconfirmed);
    // b polls: confirmed, still granted
    assert!(matches!(
        t.lock(&1, lk(&b, true, 0, 0), Some("b3")).0,
        LockResult::Granted
    ));
    assert!(!t.test(&1, &lk(&c, true, 0, 0)).unwrap().unconfirmed);
    let woken = t.unlock(&1, &b, 0, u64::MAX);
    assert_eq!(woken[0].1.token, "c");
}

#[test]
fn cancelling_removes_a_waiter_or_an_unconfirmed_grant() {
    let (a, b, c) = (
        owner("10.0.0.1", 1),
        owner("10.0.0.2", 1),
        owner("10.0.0.3", 1),
    );
    let mut t = Table::new(100, 100);
    t.lock(&1, lk(&a, true, 0, 0), None);
    t.lock(&1, lk(&b, true, 0, 0), Some("b"));
    t.lock(&1, lk(&c, true, 0, 0), Some("c"));
    assert!(t.cancel(&1, &lk(&c, true, 0, 0)).0);
    assert!(!t.cancel(&1, &lk(&c, true, 0, 0)).0);
    let woken = t.unlock(&1, &a, 0, u64::MAX);
    assert_eq!(woken.len(), 1);
    // b's process went away before it heard of the grant
    let (found, woken) = t.cancel(&1, &lk(&b, true, 0, 0));
    assert!(found && woken.is_empty());
    assert_eq!(t.entries(), 0);
    // a confirmed grant is not cancelled
    t.lock(&1, lk(&a, true, 0, 0), None);
    assert!(!t.cancel(&1, &lk(&a, true, 0, 0)).0);
}

#[test]
fn a_refused_grant_is_released_and_passes_on() {
    let (a, b, c) = (
        owner("10.0.0.1", 1),
        owner("10.0.0.2", 1),
        owner("10.0.0.3", 1),
    );
    let mut t = Table::new(100, 100);
    t.lock(&1, lk(&a, true, 0, 0), None);
    t.lock(&1, lk(&b, true, 0, 0), Some("b"));
    t.lock(&1, lk(&c, false, 0, 0), Some("c"));
    let woken = t.unlock(&1, &a, 0, u64::MAX);
    assert_eq!(woken.len(), 1);
    let woken = t.confirm(&1, &woken[0].1.lock, false);
    assert_eq!(woken[0].1.token, "c");
    let woken = t.confirm(&1, &woken[0].1.lock, true);
    assert!(woken.is_empty());
    assert!(!t.test(&1, &lk(&a, true, 0, 0)).unwrap().unconfirmed);
}

#[test]
fn releasing_a_client_frees_its_locks_and_wakes_the_others() {
    let (a, a2, b) = (
        owner("10.0.0.1", 1),
        owner("10.0.0.1", 2),
        owner("10.0.0.2", 1),
    );
    let mut t = Table::new(100, 100);
    t.lock(&1, lk(&a, true, 0, 10), None);
    t.lock(&2, lk(&a2, true, 0, 10), None);
    t.lock(&2, lk(&b, true, 0, 10), Some("b"));
    assert_eq!(t.holders(), vec![a.client]);
    let woken = t.release_client(a.client);
    assert_eq!(woken.len(), 1);
    assert_eq!(t.holders(), vec![b.client]);
    assert_eq!(t.entries(), 1);
}

#[test]
fn a_full_table_refuses_instead_of_growing() {
    let mut t = Table::new(4, 4);
    let mut refused = 0;
    for i in 0..10 {
        let o = owner("10.0.0.1", i);
        if matches!(
            t.lock(&(i as u32), lk(&o, true, 0, 1), None).0,
            LockResult::NoLocks
        ) {
            refused += 1;
        }
    }
    assert!(t.entries() <= 4);
    assert!(refused >= 6);
}

#[test]
fn one_client_cannot_fill_the_table_for_everyone() {
    let mut t = Table::new(100, 3);
    let greedy = |i| owner("10.0.0.1", i);
    let mut granted = 0;
    for i in 0..10 {
        if matches!(
            t.lock(&(i as u32), lk(&greedy(i), true, 0, 1), None).0,
            LockResult::Granted
        ) {
            granted += 1;
        }
    }
    assert!(granted <= 3, "{granted}");
    // another client still gets its locks, and the greedy one gets room back
    // as it unlocks
    assert!(matches!(
        t.lock(&50, lk(&owner("10.0.0.2", 1), true, 0, 1), None).0,
        LockResult::Granted
    ));
    t.unlock(&0, &greedy(0), 0, u64::MAX);
    assert!(matches!(
        t.lock(&60, lk(&greedy(60), true, 0, 1), None).0,
        LockResult::Granted
    ));
    let woken = t.release_client("10.0.0.1".parse().unwrap());
    assert!(woken.is_empty());
    assert_eq!(t.entries(), 1);
}

#[test]
fn ranges_map_zero_length_to_end_of_file_and_back() {
    assert_eq!(range(5, 0), (5, u64::MAX));
    assert_eq!(range(5, 1), (5, 5));
    assert_eq!(range(u64::MAX, 10), (u64::MAX, u64::MAX));
    assert_eq!(offset_len(5, u64::MAX), (5, 0));
    assert_eq!(offset_len(5, 9), (5, 5));
}
