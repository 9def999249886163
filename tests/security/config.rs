//! `volnfs check-config`: every policy mistake is an error naming its key, with a non-zero
//! exit status; `volnfs serve --config` refuses such a file too.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::{run_bounded, BIN};

struct Checked {
    success: bool,
    output: String,
}

fn check(config: &serde_json::Value) -> Checked {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("volnfs.json");
    std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run volnfs check-config");
    Checked {
        success: out.status.success(),
        output: String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr),
    }
}

fn export(name: &str, path: &str, clients: serde_json::Value) -> serde_json::Value {
    json!({"name": name, "path": path, "clients": clients})
}

fn rw(m: &str) -> serde_json::Value {
    json!([{"match": m, "access": "rw"}])
}

fn assert_refused(config: serde_json::Value, key: &str, also: &str) {
    let c = check(&config);
    assert!(!c.success, "check-config accepted {config}:\n{}", c.output);
    assert!(
        c.output.contains(key) && c.output.contains(also),
        "check-config output for {config} must name {key:?} (and mention {also:?}):\n{}",
        c.output
    );
}

#[test]
fn a_valid_config_passes() {
    let c = check(&json!({"exports": [export("/exports/data", "/srv/data", rw("10.0.0.0/8"))]}));
    assert!(c.success, "{}", c.output);
}

#[test]
fn bad_cidrs_are_errors_naming_the_rule() {
    for bad in [
        "10.0.0.0/33",
        "10.1.2.3/8",
        "not-an-address",
        "::1/129",
        "10.0.0.0/",
    ] {
        assert_refused(
            json!({"exports": [export("/exports/data", "/srv/data",
                json!([{"match": "127.0.0.1", "access": "rw"}, {"match": bad, "access": "ro"}]))]}),
            "exports[0].clients[1].match",
            bad,
        );
    }
}

#[test]
fn an_empty_client_list_is_an_error() {
    assert_refused(
        json!({"exports": [export("/exports/data", "/srv/data", json!([]))]}),
        "exports[0].clients",
        "",
    );
}

#[test]
fn overlapping_exports_are_errors() {
    for (a, b) in [
        ("/srv/data", "/srv/data/sub"),
        ("/srv/data/sub", "/srv/data"),
        ("/srv/x", "/srv/x"),
    ] {
        assert_refused(
            json!({"exports": [export("/exports/a", a, rw("10.0.0.0/8")),
                               export("/exports/b", b, rw("10.0.0.0/8"))]}),
            "exports[1].path",
            "overlaps",
        );
    }
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let cases = [
        json!({"exports": [export("/exports/data", "/srv/data", rw("10.0.0.0/8"))], "allow_all": true}),
        json!({"exports": [{"name": "/exports/data", "path": "/srv/data",
                            "clients": rw("10.0.0.0/8"), "no_squash": true}]}),
        json!({"exports": [export("/exports/data", "/srv/data",
                            json!([{"match": "10.0.0.0/8", "acces": "rw"}]))]}),
    ];
    for (config, key) in cases.into_iter().zip(["allow_all", "no_squash", "acces"]) {
        assert_refused(config, key, "");
    }
}

#[test]
fn unknown_access_and_squash_values_are_errors() {
    for (rule, word) in [
        (json!({"match": "10.0.0.0/8", "access": "rwx"}), "rwx"),
        (
            json!({"match": "10.0.0.0/8", "access": "rw", "squash": "squash_everyone"}),
            "squash_everyone",
        ),
    ] {
        assert_refused(
            json!({"exports": [export("/exports/data", "/srv/data", json!([rule]))]}),
            word,
            "",
        );
    }
}

#[test]
fn serve_refuses_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("volnfs.json");
    let config = json!({"nfs_port": 0, "mount_port": 0, "portmap": {"enabled": false},
        "exports": [export("/exports/data", dir.path().to_str().unwrap(), json!([]))]});
    std::fs::write(&path, config.to_string()).unwrap();
    // Bounded: a server that wrongly starts must not hang the test.
    let out = run_bounded(
        Command::new(BIN).args(["serve", "--config"]).arg(&path),
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "serve started with no client rules: {text}"
    );
    assert!(text.contains("exports[0].clients"), "{text}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
}
