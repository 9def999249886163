use super::*;

#[test]
fn a_hanging_command_is_killed_at_the_time_limit() {
    let t0 = std::time::Instant::now();
    let err = output_within(
        Command::new("sleep").arg("10"),
        std::time::Duration::from_millis(200),
    )
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    let ok = output_within(
        Command::new("sh").args(["-c", "seq 1 100000"]),
        std::time::Duration::from_secs(30),
    )
    .unwrap();
    assert!(ok.status.success());
    assert!(
        ok.stdout.len() > 500_000,
        "large output is drained, not blocked"
    );
}

/// `zfs get -Hp -o name,property,value,source used,available,referenced,quota,refquota,usedbysnapshots tank/vols/v1`
/// in the shape OpenZFS 2.1 prints (tabs between fields; written by hand).
const CAPTURED_GET: &str = "tank/vols/v1\tused\t41996288\t-\n\
tank/vols/v1\tavailable\t62861312\t-\n\
tank/vols/v1\treferenced\t41975808\t-\n\
tank/vols/v1\tquota\t0\tdefault\n\
tank/vols/v1\trefquota\t104857600\tlocal\n\
tank/vols/v1\tusedbysnapshots\t20480\t-\n";

/// Captured in the zfs-vm QEMU guest (OpenZFS 2.1.11-1+deb12u1) by
/// `image/test/zone-setup-on-zfs.sh`, after zone-setup and a resize.
const CAPTURED_ZONE_VOLUME: &str = "\
zones/8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f/data/data\tmountpoint\t/exports/data\tinherited from zones/8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f/data
zones/8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f/data/data\tmounted\tyes\t-
zones/8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f/data/data\trefquota\t209715200\tlocal
zones/8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f/data/data\tquota\t0\tdefault
zones/8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f/data/data\tused\t24576\t-
";

/// Same guest: stderr of three failing commands.
const CAPTURED_STDERR: [(&str, FailureKind); 3] = [
    ("cannot create 'zones/8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f/data/data': dataset already exists\n", FailureKind::Exists),
    ("cannot open 'zones/nope': dataset does not exist\n", FailureKind::NotFound),
    ("cannot set property for 'zones/8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f/data/data': size is less than current used or reserved space\n", FailureKind::NoSpace),
];

#[test]
fn output_captured_from_openzfs_parses_and_classifies() {
    let ds = DatasetProperties::from_rows(parse_get(CAPTURED_ZONE_VOLUME).unwrap());
    assert_eq!(ds.len(), 1);
    let v = &ds[0];
    assert_eq!(
        v.name,
        "zones/8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f/data/data"
    );
    assert_eq!(v.value("mountpoint"), Some("/exports/data"));
    assert!(v
        .source("mountpoint")
        .unwrap()
        .starts_with("inherited from "));
    assert_eq!(v.value("mounted"), Some("yes"));
    assert_eq!(v.bytes("refquota").unwrap(), Some(209_715_200));
    assert_eq!(v.bytes("quota").unwrap(), None, "-p prints none as 0");
    assert_eq!(v.bytes("used").unwrap(), Some(24_576));
    for (stderr, kind) in CAPTURED_STDERR {
        assert_eq!(classify_stderr(stderr), kind, "{stderr}");
    }
}

#[test]
fn get_output_parses_into_properties() {
    let rows = parse_get(CAPTURED_GET).unwrap();
    assert_eq!(rows.len(), 6);
    let ds = DatasetProperties::from_rows(rows);
    assert_eq!(ds.len(), 1);
    let v1 = &ds[0];
    assert_eq!(v1.name, "tank/vols/v1");
    assert_eq!(v1.bytes("refquota").unwrap(), Some(104_857_600));
    assert_eq!(v1.source("refquota"), Some("local"));
    assert_eq!(v1.bytes("quota").unwrap(), None, "0 means none");
    assert_eq!(v1.bytes("used").unwrap(), Some(41_996_288));
    assert_eq!(v1.bytes("missing").unwrap(), None);
}

#[test]
fn values_with_spaces_and_inherited_sources_parse() {
    let out = "zones/u/data/vol\tmountpoint\t/exports/my vol\tinherited from zones/u/data\n";
    let ds = DatasetProperties::from_rows(parse_get(out).unwrap());
    assert_eq!(ds[0].value("mountpoint"), Some("/exports/my vol"));
    assert_eq!(
        ds[0].source("mountpoint"),
        Some("inherited from zones/u/data")
    );
}

#[test]
fn malformed_get_output_is_an_error_not_a_panic() {
    let err = parse_get("tank\tused 12\n").unwrap_err();
    assert_eq!(
        err,
        ParseError::Fields {
            line: 1,
            expected: 4,
            found: 2
        }
    );
    let ds = DatasetProperties::from_rows(parse_get("t\trefquota\tlots\tlocal\n").unwrap());
    assert!(ds[0].bytes("refquota").is_err());
}

#[test]
fn failures_are_classified_from_libzfs_messages() {
    for (stderr, kind) in [
        (
            "cannot create 'tank/vols/v1': dataset already exists\n",
            FailureKind::Exists,
        ),
        (
            "cannot open 'tank/nope': dataset does not exist\n",
            FailureKind::NotFound,
        ),
        (
            "cannot open 'nopool/x': no such pool\n",
            FailureKind::NotFound,
        ),
        (
            "cannot set property for 'tank/vols/v1': size is less than current used or reserved space\n",
            FailureKind::NoSpace,
        ),
        (
            "cannot rollback 'zones/u/data/vol': disk quota exceeded\n",
            FailureKind::QuotaExceeded,
        ),
        (
            "cannot set property for 'zones/u/data': permission denied\n",
            FailureKind::Permission,
        ),
        (
            "cannot destroy 'tank/vols/v1': dataset is busy\n",
            FailureKind::Busy,
        ),
        (
            "cannot create 'tank/x': bad numeric value '12q'\n",
            FailureKind::Invalid,
        ),
        ("something else entirely\n", FailureKind::Other),
    ] {
        assert_eq!(classify_stderr(stderr), kind, "{stderr}");
    }
}

#[test]
fn dataset_names_that_could_be_options_are_refused() {
    assert!(check_dataset_name("zones/8f2c/data/vol").is_ok());
    for bad in ["", "-o", "/abs", "a//b", "a/", "a@snap", "a b"] {
        assert!(check_dataset_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_runner_reports_argv_status_and_stderr() {
    // `false` stands in for a zfs that fails: the error must carry
    // everything needed to diagnose it.
    let cli = ZfsCli::new("/bin/false");
    let err = cli.run(&["get", "all", "x"]).unwrap_err();
    let ZfsError::Failed(f) = err else {
        panic!("expected Failed, got {err:?}")
    };
    assert_eq!(f.argv, ["/bin/false", "get", "all", "x"]);
    assert_eq!(f.status, Some(1));
    assert_eq!(f.kind, FailureKind::Other);

    let missing = ZfsCli::new("/nonexistent/zfs").run(&["list"]).unwrap_err();
    assert!(matches!(missing, ZfsError::Spawn { .. }), "{missing:?}");
    assert!(missing.to_string().contains("/nonexistent/zfs list"));
}
