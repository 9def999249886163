use super::*;

fn node(gen: u64, links: &[(u64, &str)]) -> Node {
    Node {
        gen,
        links: links
            .iter()
            .map(|(p, n)| (*p, n.as_bytes().into()))
            .collect(),
    }
}

#[test]
fn node_encoding_round_trips_and_rejects_garbage() {
    let n = node(7, &[(2, "a"), (3, "long name")]);
    assert_eq!(Node::decode(&n.encode()), Some(n));
    assert_eq!(Node::decode(&[1, 2, 3]), None);
    let mut bad = node(1, &[(2, "abc")]).encode();
    bad.truncate(bad.len() - 1);
    assert_eq!(Node::decode(&bad), None);
}

#[test]
fn entries_survive_reopen_and_clean_close_is_recorded() {
    let dir = std::env::temp_dir().join(format!("volnfs-index-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("index.redb");
    {
        let o = Store::open(&path).unwrap();
        assert!(o.created && !o.complete);
        o.store.put(10, node(1, &[(2, "x")]));
        o.store.put(11, node(1, &[(2, "y")]));
        o.store.remove(11);
        assert_eq!(o.store.get(10), Some(node(1, &[(2, "x")])));
        o.store.close();
    }
    {
        let o = Store::open(&path).unwrap();
        assert!(o.complete, "closed cleanly");
        assert_eq!(o.store.get(10), Some(node(1, &[(2, "x")])));
        assert_eq!(o.store.get(11), None);
        // Not closed: the next open must know it may be incomplete.
        o.store.flush();
    }
    let o = Store::open(&path).unwrap();
    assert!(!o.complete);
    let _ = std::fs::remove_dir_all(&dir);
}
