//! Appliance packaging: the SMF manifest, the image build, the boot scripts,
//! `volnfs zone-config` / `zone-setup` from zone metadata, and bunyan logs.
//!
//! What needs illumos (mdata-get, svccfg, zones, real delegated datasets)
//! cannot run here: the boot scripts run under bash with a stand-in
//! `mdata-get`, and `zone-setup` against a stand-in `zfs` that keeps its
//! datasets in a directory and answers like `zfs get -H -p` (the parsers
//! themselves are unit-tested on captured output in `src/sys/zfs/`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::{Server, BIN};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn check_config(path: &Path) -> Output {
    run(Command::new(BIN).arg("check-config").arg(path))
}

fn zone_config(metadata: &Value) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("metadata.json");
    std::fs::write(&md, metadata.to_string()).unwrap();
    let out = run(Command::new(BIN)
        .arg("zone-config")
        .arg("--metadata")
        .arg(&md)
        .arg("--out")
        .arg(dir.path().join("volnfs.json")));
    (out, dir)
}

/// Runs zone-config, asserts success and check-config acceptance, returns the config.
fn zone_config_ok(metadata: Value) -> Value {
    let (out, dir) = zone_config(&metadata);
    assert!(
        out.status.success(),
        "zone-config failed: {}",
        text(&out.stderr)
    );
    let cfg = dir.path().join("volnfs.json");
    let check = check_config(&cfg);
    assert!(
        check.status.success(),
        "check-config refused the generated config: {}",
        text(&check.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(cfg).unwrap()).unwrap()
}

fn client_matches(cfg: &Value) -> Vec<String> {
    cfg["exports"][0]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["match"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn zone_config_one_nic_allows_its_network() {
    let cfg = zone_config_ok(serde_json::json!({
        "sdc:nics": "[{\"interface\":\"net0\",\"ip\":\"10.88.3.7\",\"netmask\":\"255.255.0.0\",\"primary\":true}]",
        "export-volumes": "[\"data\"]",
        "sdc:uuid": "8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f",
    }));
    assert_eq!(client_matches(&cfg), ["10.88.0.0/16"]);
    assert_eq!(cfg["listen"], serde_json::json!(["10.88.3.7"]));
    assert_eq!(cfg["exports"][0]["name"], "/exports/data");
    assert_eq!(cfg["exports"][0]["path"], "/exports/data");
    assert_eq!(
        cfg["exports"][0]["dataset"], "zones/8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f/data/data",
        "the control socket snapshots and resizes what zone-setup created"
    );
    assert_eq!(cfg["exports"][0]["clients"][0]["access"], "rw");
    assert_eq!(cfg["state_dir"], "/exports/.volnfs");
    assert_eq!(cfg["control_socket"], "/var/run/volnfs/control.sock");
}

#[test]
fn zone_config_two_nics_allow_both_networks() {
    let cfg = zone_config_ok(serde_json::json!({
        "sdc:nics": [
            {"interface": "net0", "ip": "10.88.3.7", "netmask": "255.255.0.0"},
            {"interface": "net1", "ips": ["192.168.7.9/22"]}
        ],
        "export-volumes": ["data", "scratch"],
        "volnfs-control-socket": "/var/run/volnfs/ctl.sock",
        "volnfs-delegated-dataset": "tank/vols",
    }));
    assert_eq!(client_matches(&cfg), ["10.88.0.0/16", "192.168.4.0/22"]);
    assert_eq!(cfg["exports"][1]["name"], "/exports/scratch");
    assert_eq!(cfg["exports"][1]["dataset"], "tank/vols/scratch");
    assert_eq!(cfg["control_socket"], "/var/run/volnfs/ctl.sock");
}

#[test]
fn zone_config_ipv6_networks_become_ipv6_rules() {
    let cfg = zone_config_ok(serde_json::json!({
        "sdc:nics": [{"interface": "net0",
            "ips": ["fd00:88:0:1::7/64", "fe80::8:20ff:fe11:2233/10", "addrconf", "10.1.2.3/24"]}],
        "export-volumes": ["data"],
        "sdc:uuid": "8f2c",
    }));
    assert_eq!(client_matches(&cfg), ["fd00:88:0:1::/64", "10.1.2.0/24"]);
    assert_eq!(
        cfg["listen"],
        serde_json::json!(["fd00:88:0:1::7", "10.1.2.3"]),
        "link-local addresses are not listened on"
    );
}

#[test]
fn zone_config_missing_keys_are_named() {
    for (metadata, key) in [
        (serde_json::json!({"export-volumes": ["data"]}), "sdc:nics"),
        (
            serde_json::json!({"sdc:nics": [{"ip": "10.0.0.2", "netmask": "255.0.0.0"}]}),
            "export-volumes",
        ),
        (
            serde_json::json!({"sdc:nics": [{"ip": "10.0.0.2"}], "export-volumes": ["data"]}),
            "sdc:nics[0].netmask",
        ),
        (
            serde_json::json!({"sdc:nics": "[{\"ip\": ", "export-volumes": ["data"]}),
            "sdc:nics",
        ),
        (
            serde_json::json!({"sdc:nics": [{"ips": ["10.0.0.2/8"]}], "export-volumes": ["data"]}),
            "sdc:uuid",
        ),
    ] {
        let (out, dir) = zone_config(&metadata);
        assert!(!out.status.success(), "{metadata} was accepted");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("\"{key}\"")),
            "error for {metadata} does not name {key:?}: {err}"
        );
        assert!(
            !dir.path().join("volnfs.json").exists(),
            "no config is written on error"
        );
    }
}

#[test]
fn config_control_socket_must_be_absolute() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(
        &cfg,
        r#"{"control_socket":"ctl.sock","exports":[{"name":"/exports/data","path":"/srv/d",
           "clients":[{"match":"10.0.0.0/8","access":"rw"}]}]}"#,
    )
    .unwrap();
    let out = check_config(&cfg);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("control_socket"),
        "{}",
        text(&out.stderr)
    );
}

// ---------------------------------------------------------------- SMF

fn smf_manifest() -> String {
    std::fs::read_to_string(repo().join("smf/manifest.xml")).unwrap()
}

fn parse_xml(s: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(s, opts).expect("smf/manifest.xml is well-formed XML")
}

fn exec_of<'a>(doc: &'a roxmltree::Document, method: &str) -> &'a str {
    doc.descendants()
        .find(|n| n.has_tag_name("exec_method") && n.attribute("name") == Some(method))
        .and_then(|n| n.attribute("exec"))
        .unwrap_or_else(|| panic!("no {method} method"))
}

fn propval<'a>(doc: &'a roxmltree::Document, pg: &str, name: &str) -> Option<&'a str> {
    doc.descendants()
        .filter(|n| n.has_tag_name("property_group") && n.attribute("name") == Some(pg))
        .flat_map(|g| g.children())
        .find(|n| n.has_tag_name("propval") && n.attribute("name") == Some(name))
        .and_then(|n| n.attribute("value"))
}

#[test]
fn smf_manifest_declares_the_service_contract() {
    let text = smf_manifest();
    let doc = parse_xml(&text);
    let svc = doc
        .descendants()
        .find(|n| n.has_tag_name("service"))
        .unwrap();
    assert_eq!(svc.attribute("name"), Some("application/volnfs"));
    assert!(doc
        .descendants()
        .any(|n| n.has_tag_name("instance") && n.attribute("name") == Some("default")));
    assert_eq!(propval(&doc, "startd", "duration"), Some("child"));
    assert_eq!(exec_of(&doc, "stop"), ":kill");
    assert_eq!(exec_of(&doc, "refresh"), ":kill -HUP");

    let deps: Vec<(String, String)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("dependency"))
        .flat_map(|d| {
            let grouping = d.attribute("grouping").unwrap_or("").to_string();
            d.children()
                .filter(|c| c.has_tag_name("service_fmri"))
                .map(move |c| {
                    (
                        grouping.clone(),
                        c.attribute("value").unwrap_or("").to_string(),
                    )
                })
        })
        .collect();
    for needed in ["svc:/milestone/network", "svc:/system/filesystem/local"] {
        assert!(
            deps.iter()
                .any(|(g, f)| g == "require_all" && f.starts_with(needed)),
            "no require_all dependency on {needed}: {deps:?}"
        );
    }
    // The built-in portmapper is the default: rpcbind may not run beside it.
    assert!(
        deps.iter()
            .all(|(g, f)| !(f.contains("rpc/bind") && g != "exclude_all")),
        "rpc/bind must only be excluded: {deps:?}"
    );
}

/// The parts of illumos's service_bundle.dtd.1 a mistake here would break:
/// the order of a service's children and the required attributes.
#[test]
fn smf_manifest_follows_the_service_bundle_dtd_shape() {
    let text = smf_manifest();
    let doc = parse_xml(&text);
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "service_bundle");
    assert_eq!(root.attribute("type"), Some("manifest"));
    assert!(root.attribute("name").is_some());
    const ORDER: [&str; 11] = [
        "create_default_instance",
        "single_instance",
        "restarter",
        "dependency",
        "dependent",
        "method_context",
        "exec_method",
        "property_group",
        "instance",
        "stability",
        "template",
    ];
    let svc = root.children().find(|n| n.is_element()).unwrap();
    let mut last = 0;
    for child in svc.children().filter(|n| n.is_element()) {
        let name = child.tag_name().name();
        let pos = ORDER
            .iter()
            .position(|o| *o == name)
            .unwrap_or_else(|| panic!("<{name}> may not appear in <service>"));
        assert!(pos >= last, "<{name}> is out of the DTD's order");
        last = pos;
    }
    let required: [(&str, &[&str]); 6] = [
        ("service", &["name", "version", "type"]),
        ("dependency", &["name", "grouping", "restart_on", "type"]),
        ("exec_method", &["type", "name", "exec", "timeout_seconds"]),
        ("property_group", &["name", "type"]),
        ("propval", &["name", "type", "value"]),
        ("instance", &["name", "enabled"]),
    ];
    for (tag, attrs) in required {
        for n in doc.descendants().filter(|n| n.has_tag_name(tag)) {
            for a in attrs {
                assert!(n.attribute(*a).is_some(), "<{tag}> lacks {a}");
            }
        }
    }
    for n in doc
        .descendants()
        .filter(|n| n.has_tag_name("method_context"))
    {
        let kids: Vec<&str> = n
            .children()
            .filter(|c| c.is_element())
            .map(|c| c.tag_name().name())
            .collect();
        assert!(
            matches!(
                kids.as_slice(),
                [] | ["method_credential"]
                    | ["method_profile"]
                    | ["method_environment"]
                    | ["method_credential" | "method_profile", "method_environment"]
            ),
            "method_context children: {kids:?}"
        );
    }
}

/// The start method runs with exactly the privileges smf/README.md explains, one row each,
/// and may never gain more (limit = the same set).
#[test]
fn smf_start_method_holds_exactly_the_documented_privileges() {
    let text = smf_manifest();
    let doc = parse_xml(&text);
    let cred = doc
        .descendants()
        .find(|n| n.has_tag_name("method_credential"))
        .expect("the start method has a method_credential");
    let set = |attr: &str| -> std::collections::BTreeSet<String> {
        cred.attribute(attr)
            .unwrap_or_else(|| panic!("method_credential lacks {attr}"))
            .split(',')
            .map(|p| p.trim().to_string())
            .collect()
    };
    let privileges = set("privileges");
    assert_eq!(
        privileges,
        set("limit_privileges"),
        "limit set must equal the working set"
    );
    assert_eq!(cred.attribute("user"), Some("root"));
    let readme = std::fs::read_to_string(repo().join("smf/README.md")).unwrap();
    let section = readme
        .split("## Privileges")
        .nth(1)
        .expect("smf/README.md has a Privileges section");
    let documented: std::collections::BTreeSet<String> = section
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let first = l.split('|').nth(1).unwrap_or("");
            first
                .split(',')
                .map(|p| p.trim().trim_matches('`').to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        privileges, documented,
        "every privilege granted has a row in smf/README.md, and no more"
    );
    for needed in [
        "net_privaddr",
        "sys_nfs",
        "file_chown",
        "sys_mount",
        "file_dac_read",
    ] {
        assert!(privileges.contains(needed), "{needed} missing");
    }
}

#[test]
fn smf_start_method_names_what_the_image_installs_and_the_binary_reads() {
    let text = smf_manifest();
    let doc = parse_xml(&text);
    let start = exec_of(&doc, "start");
    let argv: Vec<&str> = start.split_whitespace().collect();
    assert_eq!(argv[0], "/opt/volnfs/bin/volnfs");
    assert_eq!(argv[1], "serve", "runs in the foreground: {start}");
    assert!(
        !start.contains('&'),
        "must not background the server: {start}"
    );

    // Every %{pg/prop} token names a property the manifest defines.
    let mut rest = start;
    let mut tokens = Vec::new();
    while let Some(i) = rest.find("%{") {
        let end = rest[i..].find('}').expect("closed token") + i;
        tokens.push(&rest[i + 2..end]);
        rest = &rest[end + 1..];
    }
    assert!(tokens.contains(&"config/file"), "{start}");
    for t in &tokens {
        let (pg, name) = t.split_once('/').unwrap();
        assert!(propval(&doc, pg, name).is_some(), "{t} is not defined");
    }

    // config/file is where configure.sh writes the config.
    let config_file = propval(&doc, "config", "file").unwrap();
    assert_eq!(config_file, "/opt/volnfs/etc/volnfs.json");
    let configure = std::fs::read_to_string(repo().join("image/boot/configure.sh")).unwrap();
    assert!(
        configure.contains(config_file),
        "configure.sh writes elsewhere"
    );

    // The log format is one the binary accepts (clap exits 2 on a bad value).
    let fmt = propval(&doc, "config", "log_format").unwrap();
    assert_eq!(fmt, "bunyan");
    let out = run(Command::new(BIN).args([
        "serve",
        "--config",
        "/nonexistent/volnfs.json",
        "--log-format",
        fmt,
    ]));
    // 96 = SMF_EXIT_ERR_CONFIG (a missing config is a config error, not a bad flag: 2).
    assert_eq!(
        out.status.code(),
        Some(96),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text_of(&out).contains("/nonexistent/volnfs.json"));

    // The flags the start method passes exist.
    let help = text_of(&run(Command::new(BIN).args(["serve", "--help"])));
    for flag in argv.iter().filter(|a| a.starts_with("--")) {
        assert!(help.contains(flag), "serve has no {flag}");
    }
}

fn text_of(o: &Output) -> String {
    format!("{}{}", text(&o.stdout), text(&o.stderr))
}

// ---------------------------------------------------------------- image

fn build_image(out: &Path, bin: &Path) -> Output {
    run(Command::new("bash")
        .arg(repo().join("image/build.sh"))
        .env("OUT", out)
        .env("VOLNFS_BIN", bin)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("VERSION")
        .env_remove("ORIGIN_UUID"))
}

fn cargo_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[test]
fn image_build_assembles_the_tree_and_manifest() {
    let out = tempfile::tempdir().unwrap();
    let b = build_image(out.path(), Path::new(BIN));
    assert!(b.status.success(), "build.sh failed: {}", text_of(&b));
    let v = cargo_version();
    let tarball = out.path().join(format!("volnfs-{v}.tar.gz"));
    let list = run(Command::new("tar")
        .arg("-tvzf")
        .arg(&tarball)
        .env("TZ", "UTC"));
    assert!(list.status.success());
    let mut files = Vec::new();
    for line in text(&list.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (mode, owner, path) = (f[0], f[1], f[f.len() - 1]);
        assert_eq!(owner, "0/0", "{line}");
        assert!(
            line.contains("2023-11-14"),
            "mtime is SOURCE_DATE_EPOCH: {line}"
        );
        if !mode.starts_with('d') {
            files.push((path.to_string(), mode.to_string()));
        }
    }
    let expected = [
        ("opt/smartdc/boot/configure.sh", "-rwxr-xr-x"),
        ("opt/smartdc/boot/setup.sh", "-rwxr-xr-x"),
        ("opt/smartdc/boot/volnfs-metadata.sh", "-rw-r--r--"),
        ("opt/volnfs/bin/volnfs", "-rwxr-xr-x"),
        ("opt/volnfs/etc/volnfs.example.json", "-rw-r--r--"),
        ("var/svc/manifest/site/volnfs.xml", "-r--r--r--"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(files, expected, "sorted tree");

    // The installed pieces are the repository's, and the binary runs.
    let proto = out.path().join("proto");
    assert_eq!(
        std::fs::read(proto.join("var/svc/manifest/site/volnfs.xml")).unwrap(),
        smf_manifest().into_bytes()
    );
    let ver = run(Command::new(proto.join("opt/volnfs/bin/volnfs")).arg("--version"));
    assert!(text(&ver.stdout).contains(&v));
    let example = check_config(&proto.join("opt/volnfs/etc/volnfs.example.json"));
    assert!(example.status.success(), "{}", text_of(&example));
    // The start method's binary is in the tree.
    let doc_text = smf_manifest();
    let doc = parse_xml(&doc_text);
    let start_bin = exec_of(&doc, "start").split_whitespace().next().unwrap();
    assert!(proto.join(start_bin.trim_start_matches('/')).is_file());

    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join(format!("volnfs-{v}.manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(m["v"], 2);
    assert_eq!(m["name"], "volnfs");
    assert_eq!(m["version"], v.as_str());
    assert_eq!(m["type"], "zone-dataset");
    assert_eq!(m["os"], "smartos");
    assert_eq!(m["published_at"], "2023-11-14T22:13:20Z");
    assert_eq!(m["requirements"]["brand"], "joyent-minimal");
    assert!(m["description"].as_str().is_some_and(|d| !d.is_empty()));
    let uuid = m["uuid"].as_str().unwrap();
    assert_eq!(uuid.len(), 36);
    assert_eq!(uuid.matches('-').count(), 4);
    assert!(m.get("origin").is_none(), "no ORIGIN_UUID, no origin");
    assert!(!m.to_string().contains("@@"));
}

#[test]
fn image_build_is_reproducible() {
    // A small stand-in binary keeps this quick; the packing is what is tested.
    let scratch = tempfile::tempdir().unwrap();
    let bin = scratch.path().join("volnfs");
    std::fs::write(&bin, "#!/bin/sh\necho volnfs stand-in\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for d in [&a, &b] {
        let o = build_image(d.path(), &bin);
        assert!(o.status.success(), "{}", text_of(&o));
    }
    let v = cargo_version();
    for f in [
        format!("volnfs-{v}.tar.gz"),
        format!("volnfs-{v}.manifest.json"),
    ] {
        assert_eq!(
            std::fs::read(a.path().join(&f)).unwrap(),
            std::fs::read(b.path().join(&f)).unwrap(),
            "{f} differs between two builds"
        );
    }
}

// ---------------------------------------------------------------- boot scripts

/// A stand-in `mdata-get`: prints `$MDATA_DIR/<key>`, exit 1 when absent
/// (what the real one does for an unknown key).
const FAKE_MDATA_GET: &str = r#"#!/bin/bash
f="$MDATA_DIR/$1"
if [[ -f $f ]]; then cat "$f"; exit 0; fi
echo "No metadata for '$1'" >&2
exit 1
"#;

/// A stand-in `zfs`: datasets are directories under $FAKE_ZFS/ds (name with
/// '/' as '%'), properties files in them. Mounting = mkdir of the mountpoint.
/// Every invocation is appended to $FAKE_ZFS/calls.
const FAKE_ZFS: &str = r#"#!/bin/bash
S=$FAKE_ZFS
echo "$*" >>"$S/calls"
d() { echo "$S/ds/${1//\//%}"; }
mp() { # effective mountpoint of $1
    local ds=$1 suffix=''
    while :; do
        if [[ -f $(d "$ds")/mountpoint ]]; then echo "$(cat "$(d "$ds")/mountpoint")$suffix"; return; fi
        [[ $ds == */* ]] || { echo "/$1"; return; }
        suffix="/${ds##*/}$suffix"; ds=${ds%/*}
    done
}
case $1 in
get)
    props=$6 ds=$7
    [[ -d $(d "$ds") ]] || { echo "cannot open '$ds': dataset does not exist" >&2; exit 1; }
    IFS=, read -ra list <<<"$props"
    for p in "${list[@]}"; do
        if [[ $p == mountpoint ]]; then
            src=default; [[ -f $(d "$ds")/mountpoint ]] && src=local
            printf '%s\t%s\t%s\t%s\n' "$ds" "$p" "$(mp "$ds")" "$src"
        elif [[ $p == mounted ]]; then
            m=no; [[ -d $(mp "$ds") ]] && m=yes
            printf '%s\t%s\t%s\t-\n' "$ds" "$p" "$m"
        elif [[ -f $(d "$ds")/$p ]]; then printf '%s\t%s\t%s\tlocal\n' "$ds" "$p" "$(cat "$(d "$ds")/$p")"
        else printf '%s\t%s\t0\tdefault\n' "$ds" "$p"; fi
    done ;;
set)
    ds=$3 kv=$2
    [[ -d $(d "$ds") ]] || { echo "cannot open '$ds': dataset does not exist" >&2; exit 1; }
    echo "${kv#*=}" >"$(d "$ds")/${kv%%=*}"
    [[ ${kv%%=*} == mountpoint ]] && mkdir -p "${kv#*=}" ;;
create)
    shift; opts=()
    while [[ $1 == -o ]]; do opts+=("$2"); shift 2; done
    ds=$1
    [[ -d $(d "$ds") ]] && { echo "cannot create '$ds': dataset already exists" >&2; exit 1; }
    [[ -d $(d "${ds%/*}") ]] || { echo "cannot create '$ds': parent does not exist" >&2; exit 1; }
    mkdir -p "$(d "$ds")"
    for kv in "${opts[@]}"; do echo "${kv#*=}" >"$(d "$ds")/${kv%%=*}"; done
    mkdir -p "$(mp "$ds")" ;;
*) echo "fake zfs: unsupported: $*" >&2; exit 2 ;;
esac
"#;

struct Zone {
    dir: tempfile::TempDir,
}

impl Zone {
    fn new(metadata: &[(&str, &str)]) -> Zone {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("mdata")).unwrap();
        std::fs::create_dir_all(p.join("zfs/ds/zones%8f2c%data")).unwrap();
        for (k, v) in metadata {
            std::fs::write(p.join("mdata").join(k), v).unwrap();
        }
        std::fs::create_dir_all(p.join("bin")).unwrap();
        for (name, body) in [("bin/mdata-get", FAKE_MDATA_GET), ("bin/zfs", FAKE_ZFS)] {
            std::fs::write(p.join(name), body).unwrap();
            std::fs::set_permissions(p.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Zone { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn boot_script(&self, name: &str) -> Output {
        run(Command::new("bash")
            .arg(repo().join("image/boot").join(name))
            .env("MDATA_GET", self.path("bin/mdata-get"))
            .env("MDATA_DIR", self.path("mdata"))
            .env("VOLNFS", BIN)
            .env("VOLNFS_METADATA", self.path("etc/zone-metadata.json"))
            .env("VOLNFS_CONFIG", self.path("etc/volnfs.json"))
            .env("VOLNFS_EXPORTS_ROOT", self.path("exports"))
            .env("ZFS", self.path("bin/zfs"))
            .env("FAKE_ZFS", self.path("zfs")))
    }

    fn zfs_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("zfs/calls"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

const NICS: &str = r#"[{"interface":"net0","mac":"90:b8:d0:1a:2b:3c","nic_tag":"sdc_overlay","ip":"10.88.3.7","netmask":"255.255.255.0","primary":true},{"interface":"net1","ips":["fd00:88::7/64"]}]"#;

#[test]
fn configure_sh_writes_a_config_check_config_accepts() {
    let zone = Zone::new(&[
        ("sdc:nics", NICS),
        ("sdc:uuid", "8f2c"),
        ("export-volumes", "[\"data\"]"),
        ("volnfs-squash", "root_squash"),
    ]);
    let o = zone.boot_script("configure.sh");
    assert!(o.status.success(), "configure.sh: {}", text_of(&o));
    let cfg_path = zone.path("etc/volnfs.json");
    let check = check_config(&cfg_path);
    assert!(check.status.success(), "{}", text_of(&check));
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    assert_eq!(client_matches(&cfg), ["10.88.3.0/24", "fd00:88::/64"]);
    assert_eq!(cfg["exports"][0]["clients"][0]["squash"], "root_squash");
    assert_eq!(cfg["exports"][0]["dataset"], "zones/8f2c/data/data");
    assert_eq!(
        cfg["exports"][0]["path"],
        zone.path("exports/data").to_str().unwrap()
    );
    // The metadata file keeps what mdata-get printed, as strings.
    let md: Value = serde_json::from_str(
        &std::fs::read_to_string(zone.path("etc/zone-metadata.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(md["sdc:nics"], NICS);
    assert!(
        md.get("volnfs-control-socket").is_none(),
        "absent keys are left out"
    );
}

#[test]
fn boot_scripts_only_fetch_metadata_and_call_the_binary() {
    for script in ["setup.sh", "configure.sh"] {
        let body = std::fs::read_to_string(repo().join("image/boot").join(script)).unwrap();
        assert!(
            body.starts_with("#!/usr/bin/bash\n"),
            "{script}: SmartOS's bash"
        );
        let mut continued = false;
        for line in body.lines() {
            let l = line.trim();
            let is_continuation = continued;
            continued = l.ends_with('\\');
            if is_continuation || l.is_empty() || l.starts_with('#') {
                continue;
            }
            let word = l.split_whitespace().next().unwrap();
            assert!(
                ["export", "set", ".", "fetch_metadata"].contains(&word)
                    || l.starts_with("exec \"$VOLNFS\" zone-"),
                "{script} does more than fetch metadata and call volnfs: {l}"
            );
        }
    }
}

#[test]
fn metadata_values_survive_quoting_by_the_boot_scripts() {
    let tricky = "a\\b \"quoted\"\nsecond line\ttab $HOME `x`";
    let zone = Zone::new(&[("odd-key", tricky), ("sdc:nics", NICS)]);
    let o = run(Command::new("bash")
        .arg("-c")
        .arg(". \"$1\" && fetch_metadata odd-key sdc:nics absent-key")
        .arg("fetch")
        .arg(repo().join("image/boot/volnfs-metadata.sh"))
        .env("MDATA_GET", zone.path("bin/mdata-get"))
        .env("MDATA_DIR", zone.path("mdata"))
        .env("VOLNFS_METADATA", zone.path("md.json")));
    assert!(o.status.success(), "{}", text_of(&o));
    let md: Value =
        serde_json::from_str(&std::fs::read_to_string(zone.path("md.json")).unwrap()).unwrap();
    assert_eq!(md["odd-key"], tricky);
    assert_eq!(md["sdc:nics"], NICS);
    assert_eq!(md.as_object().unwrap().len(), 2, "absent keys are left out");
}

#[test]
fn configure_sh_fails_naming_a_missing_key() {
    let zone = Zone::new(&[("export-volumes", "[\"data\"]")]);
    let o = zone.boot_script("configure.sh");
    assert!(!o.status.success());
    assert!(text_of(&o).contains("\"sdc:nics\""), "{}", text_of(&o));
    assert!(!zone.path("etc/volnfs.json").exists());
}

#[test]
fn setup_sh_creates_the_volume_with_its_refquota_and_is_idempotent() {
    let zone = Zone::new(&[
        ("sdc:uuid", "8f2c"),
        ("export-volumes", "[\"data\"]"),
        ("volume-size-mib", "10240"),
    ]);
    let first = zone.boot_script("setup.sh");
    assert!(first.status.success(), "setup.sh: {}", text_of(&first));
    assert!(text(&first.stdout).contains("zones/8f2c/data/data created refquota=10737418240"));
    let calls = zone.zfs_calls();
    let root = zone.path("exports");
    assert!(
        calls.contains(&format!(
            "set mountpoint={} zones/8f2c/data",
            root.display()
        )),
        "{calls:?}"
    );
    assert!(calls.contains(&"create -o refquota=10737418240 zones/8f2c/data/data".to_string()));
    assert_eq!(
        std::fs::read_to_string(zone.path("zfs/ds/zones%8f2c%data%data/refquota"))
            .unwrap()
            .trim(),
        "10737418240"
    );
    let state = root.join(".volnfs");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(root.join("data").is_dir());

    // Second boot: nothing is created or set again.
    std::fs::remove_file(zone.path("zfs/calls")).unwrap();
    let second = zone.boot_script("setup.sh");
    assert!(second.status.success(), "{}", text_of(&second));
    assert!(text(&second.stdout).contains("zones/8f2c/data/data exists refquota=10737418240"));
    let calls = zone.zfs_calls();
    assert!(
        calls
            .iter()
            .all(|c| c.starts_with("get ") || c.starts_with("create ")),
        "second run changed something: {calls:?}"
    );
}

#[test]
fn zone_setup_refuses_to_put_state_on_an_unmounted_dataset() {
    let zone = Zone::new(&[
        ("sdc:uuid", "8f2c"),
        ("export-volumes", "[\"data\"]"),
        ("volume-size-mib", "10"),
    ]);
    // The mountpoint is right but nothing is mounted there.
    let root = zone.path("exports");
    std::fs::write(
        zone.path("zfs/ds/zones%8f2c%data/mountpoint"),
        root.to_str().unwrap(),
    )
    .unwrap();
    let o = zone.boot_script("setup.sh");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("is not mounted"),
        "{}",
        text_of(&o)
    );
    assert!(!root.join(".volnfs").exists());
    assert!(
        !zone.zfs_calls().iter().any(|c| c.starts_with("create")),
        "nothing is created on an unmounted dataset"
    );
}

#[test]
fn zone_setup_reports_a_missing_delegated_dataset_with_the_command() {
    let zone = Zone::new(&[
        ("sdc:uuid", "0000-not-delegated"),
        ("export-volumes", "[\"data\"]"),
        ("volume-size-mib", "10"),
    ]);
    let o = zone.boot_script("setup.sh");
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("zones/0000-not-delegated/data"), "{err}");
    assert!(err.contains("dataset does not exist"), "{err}");
    assert!(err.contains("not found"), "classified: {err}");
    assert!(err.contains(" get -H -p "), "argv in the error: {err}");
}

// ---------------------------------------------------------------- logging

#[test]
fn server_log_lines_are_bunyan_json() {
    let server = Server::builder()
        .no_portmap()
        .args(&["--log-format", "bunyan"])
        .env("RUST_LOG", "info")
        .start();
    // The server logs (to stderr: the log file) before it prints its ready line.
    let log = std::fs::read_to_string(server.log_path()).unwrap();
    let line = log
        .lines()
        .next()
        .expect("server printed a log line")
        .to_string();
    let pid = server.pid();
    let status = server.terminate();
    assert!(status.success(), "SIGTERM exits cleanly: {status:?}");

    let rec: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(rec["v"], 0, "{line}");
    assert_eq!(rec["name"], "volnfs");
    assert_eq!(rec["level"], 30, "info is 30: {line}");
    assert_eq!(rec["pid"], pid);
    assert!(rec["hostname"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(rec["msg"].as_str().is_some_and(|m| !m.is_empty()));
    let time = rec["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && &time[10..11] == "T",
        "ISO 8601: {time}"
    );
    // python3's json module (what operators' scripts use) agrees.
    if let Ok(py) = Command::new("python3")
        .args(["-c", "import json,sys; r=json.loads(sys.argv[1]); assert {'v','level','name','hostname','pid','time','msg'} <= r.keys()", &line])
        .output()
    {
        assert!(py.status.success(), "python3 json.loads: {}", text(&py.stderr));
    }
}
