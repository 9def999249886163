//! Validation: a parsed file becomes a [`Config`], or the list of every
//! problem, each naming the key that has it (e.g.
//! `exports[0].clients[1].match`), so `volnfs check-config` reports them
//! all at once.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

use super::file::ConfigFile;
use super::{validate_export_name, Config, ConfigProblem, Export, DEFAULT_CONTROL_SOCKET};
use crate::access::{Cidr, ClientRule, ExportPolicy};

impl ConfigFile {
    pub fn validate(&self) -> Result<Config, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut problem =
            |key: String, message: String| problems.push(ConfigProblem { key, message });

        let mut listen = Vec::new();
        if self.listen.is_empty() {
            problem("listen".into(), "at least one address is required".into());
        }
        for (i, a) in self.listen.iter().enumerate() {
            match a.parse::<IpAddr>() {
                Ok(ip) => listen.push(ip),
                Err(_) => problem(
                    format!("listen[{i}]"),
                    format!("{a:?} is not an IP address"),
                ),
            }
        }
        if self.exports.is_empty() {
            problem("exports".into(), "at least one export is required".into());
        }
        let mut exports = Vec::new();
        let mut names = HashSet::new();
        let mut paths: Vec<(usize, PathBuf)> = Vec::new();
        for (i, e) in self.exports.iter().enumerate() {
            let key = |k: &str| format!("exports[{i}].{k}");
            if let Err(m) = validate_export_name(&e.name) {
                problem(key("name"), format!("{:?} {m}", e.name));
            }
            if !names.insert(e.name.clone()) {
                problem(key("name"), format!("{:?} is exported twice", e.name));
            }
            if !e.path.is_absolute() {
                problem(
                    key("path"),
                    format!("{} must be an absolute path", e.path.display()),
                );
            }
            for (j, p) in &paths {
                if e.path.starts_with(p) || p.starts_with(&e.path) {
                    problem(
                        key("path"),
                        format!(
                            "{} overlaps exports[{j}].path {}",
                            e.path.display(),
                            p.display()
                        ),
                    );
                }
            }
            if let Some(sd) = &self.state_dir {
                if sd.starts_with(&e.path) {
                    problem(
                        "state_dir".into(),
                        format!(
                            "{} is inside exports[{i}].path; clients could read the handle keys",
                            sd.display()
                        ),
                    );
                }
            }
            paths.push((i, e.path.clone()));
            if e.clients.is_empty() {
                problem(
                    key("clients"),
                    "is empty: no client could mount (access is denied by default); add e.g. {\"match\": \"10.0.0.0/8\", \"access\": \"rw\"}".into(),
                );
            }
            let mut rules = Vec::new();
            for (j, c) in e.clients.iter().enumerate() {
                match c.match_.parse::<Cidr>() {
                    Ok(cidr) => {
                        if rules.iter().any(|r: &ClientRule| r.cidr == cidr) {
                            problem(
                                format!("exports[{i}].clients[{j}].match"),
                                format!("{cidr} is listed twice"),
                            );
                        }
                        rules.push(ClientRule {
                            cidr,
                            access: c.access,
                            squash: c.squash,
                        })
                    }
                    Err(err) => {
                        problem(format!("exports[{i}].clients[{j}].match"), err.to_string())
                    }
                }
            }
            if let Some(ds) = &e.dataset {
                if let Err(m) = crate::sys::zfs::check_dataset_name(ds) {
                    problem(key("dataset"), format!("{ds:?}: {m}"));
                }
            }
            exports.push(Export {
                sync: e.sync,
                dataset: e.dataset.clone(),
                name: e.name.clone(),
                path: e.path.clone(),
                policy: ExportPolicy {
                    rules,
                    anon_uid: e.anonuid,
                    anon_gid: e.anongid,
                    secure: e.secure,
                },
            });
        }
        if let Some(cs) = &self.control_socket {
            if !cs.is_absolute() {
                problem(
                    "control_socket".into(),
                    format!("{} must be an absolute path", cs.display()),
                );
            }
        }
        if let Some(cc) = &self.control_connect {
            if !cc.is_absolute() {
                problem(
                    "control_connect".into(),
                    format!(
                        "{} must be an absolute path (the agent's socket, e.g. /.zonecontrol/volnfs.sock)",
                        cc.display()
                    ),
                );
            } else if self.control_socket.as_ref() == Some(cc) {
                problem(
                    "control_connect".into(),
                    format!(
                        "{} is also control_socket: volnfs would connect to itself",
                        cc.display()
                    ),
                );
            }
        }
        if let Some(z) = &self.zfs {
            if !z.is_absolute() {
                problem(
                    "zfs".into(),
                    format!(
                        "{} must be an absolute path (volnfs never searches $PATH)",
                        z.display()
                    ),
                );
            }
        }
        let mut limits = crate::rpc::server::Limits::default();
        if let Some(n) = self.limits.max_connections {
            if n == 0 {
                problem("limits.max_connections".into(), "must be at least 1".into());
            }
            limits.max_connections = n.max(1);
        }
        if let Some(n) = self.limits.max_inflight_per_connection {
            if n == 0 || n > 4096 {
                problem(
                    "limits.max_inflight_per_connection".into(),
                    format!("is {n}; must be between 1 and 4096"),
                );
            }
            limits.max_inflight_per_conn = n.clamp(1, 4096);
        }
        if let Some(us) = self.limits.busy_poll_us {
            match crate::rpc::server::busy_poll_window(us) {
                Ok(window) => limits.busy_poll = window,
                Err(why) => problem("limits.busy_poll_us".into(), format!("is {us}; {why}")),
            }
        }
        let ports = [("nfs_port", self.nfs_port), ("mount_port", self.mount_port)];
        if self.nfs_port != 0 && self.nfs_port == self.mount_port {
            // Allowed: every port serves every program. Nothing to report.
        }
        if self.portmap.enabled {
            for (k, p) in ports {
                if p != 0 && p == self.portmap.port {
                    problem(k.into(), format!("port {p} is also portmap.port"));
                }
            }
        }
        let mut io = crate::iopool::PoolConfig::default();
        if let Some(n) = self.io.threads {
            if n == 0 || n > 4096 {
                problem(
                    "io.threads".into(),
                    format!("is {n}; must be between 1 and 4096"),
                );
            }
            io.threads = n.clamp(1, 4096);
            io.per_client = io.per_client.min(io.threads);
        }
        if let Some(n) = self.io.threads_per_client {
            if n == 0 || n > io.threads {
                problem(
                    "io.threads_per_client".into(),
                    format!("must be between 1 and io.threads ({})", io.threads),
                );
            }
            io.per_client = n.clamp(1, io.threads);
        }
        if self.locking.grace_seconds > 3600 {
            problem(
                "locking.grace_seconds".into(),
                "must be at most 3600 (clients reclaim within seconds of being told)".into(),
            );
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            listen,
            nfs_port: self.nfs_port,
            mount_port: self.mount_port,
            portmap_port: self.portmap.enabled.then_some(self.portmap.port),
            state_dir: self.state_dir.clone(),
            control_socket: Some(
                self.control_socket
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET)),
            ),
            control_connect: self.control_connect.clone(),
            zfs_path: self
                .zfs
                .clone()
                .unwrap_or_else(|| crate::sys::zfs::DEFAULT_ZFS_PATH.into()),
            snapshot_limit: self.snapshot_limit,
            exports,
            limits,
            lock_grace: self
                .locking
                .enabled
                .then(|| std::time::Duration::from_secs(self.locking.grace_seconds)),
            io,
            device_nodes: self.device_nodes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Squash;
    use crate::config::{ConfigError, NOBODY};
    use std::path::Path;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("test.json"))
    }

    #[test]
    fn minimal_config_parses() {
        let c = parse(
            r#"{"exports":[{"name":"/exports/data","path":"/srv/data",
            "clients":[{"match":"10.0.0.0/8","access":"rw"}]}]}"#,
        )
        .unwrap();
        assert_eq!(c.nfs_port, 2049);
        assert_eq!(c.portmap_port, Some(111));
        assert_eq!(c.exports[0].policy.anon_uid, NOBODY);
        assert_eq!(c.exports[0].policy.rules[0].squash, Squash::RootSquash);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse(r#"{"exports":[],"bogus":1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = parse(
            r#"{"listen":["nope"],"exports":[
                {"name":"exports/data","path":"/srv/a","clients":[]},
                {"name":"/b","path":"/srv/a/sub","clients":[{"match":"10.0.0.0/33","access":"ro"}]}]}"#,
        )
        .unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else {
            panic!("expected Invalid")
        };
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "listen[0]",
            "exports[0].name",
            "exports[0].clients",
            "exports[1].path",
            "exports[1].clients[0].match",
        ] {
            assert!(keys.contains(&k), "missing {k} in {keys:?}");
        }
    }

    #[test]
    fn locking_is_on_by_default_and_can_be_turned_off_or_tuned() {
        let exports = r#""exports":[{"name":"/e","path":"/srv/e","clients":[{"match":"10.0.0.0/8","access":"rw"}]}]"#;
        let c = parse(&format!("{{{exports}}}")).unwrap();
        assert_eq!(c.lock_grace, Some(std::time::Duration::from_secs(90)));
        let c = parse(&format!(
            r#"{{{exports},"locking":{{"grace_seconds":20}}}}"#
        ))
        .unwrap();
        assert_eq!(c.lock_grace, Some(std::time::Duration::from_secs(20)));
        let c = parse(&format!(r#"{{{exports},"locking":{{"enabled":false}}}}"#)).unwrap();
        assert_eq!(c.lock_grace, None);
        let err = parse(&format!(
            r#"{{{exports},"locking":{{"grace_seconds":100000}}}}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("locking.grace_seconds"), "{err}");
        let err = parse(&format!(r#"{{{exports},"locking":{{"grace":1}}}}"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("grace"), "{err}");
    }

    #[test]
    fn busy_polling_is_on_by_default_and_can_be_turned_off() {
        let exports = r#""exports":[{"name":"/e","path":"/srv/e","clients":[{"match":"10.0.0.0/8","access":"rw"}]}]"#;
        let c = parse(&format!("{{{exports}}}")).unwrap();
        assert_eq!(c.limits.busy_poll, std::time::Duration::from_micros(100));
        let c = parse(&format!(r#"{{{exports},"limits":{{"busy_poll_us":0}}}}"#)).unwrap();
        assert!(c.limits.busy_poll.is_zero());
        let err = parse(&format!(
            r#"{{{exports},"limits":{{"busy_poll_us":5000}}}}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("limits.busy_poll_us"), "{err}");
        assert!(err.contains("is 5000"), "the rejected value: {err}");
    }

    #[test]
    fn control_connect_must_be_an_absolute_path() {
        let exports = r#""exports":[{"name":"/e","path":"/srv/e","clients":[{"match":"10.0.0.0/8","access":"rw"}]}]"#;
        let c = parse(&format!(
            r#"{{{exports},"control_connect":"/.zonecontrol/volnfs.sock"}}"#
        ))
        .unwrap();
        assert_eq!(
            c.control_connect.as_deref(),
            Some(Path::new("/.zonecontrol/volnfs.sock"))
        );
        assert_eq!(
            parse(&format!("{{{exports}}}")).unwrap().control_connect,
            None
        );
        for bad in [
            r#""control_connect":"volnfs.sock""#,
            r#""control_connect":"/run/c.sock","control_socket":"/run/c.sock""#,
        ] {
            let err = parse(&format!("{{{exports},{bad}}}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("control_connect:"), "{err}");
        }
    }

    #[test]
    fn export_names_are_checked() {
        assert!(validate_export_name("/exports/data").is_ok());
        assert!(validate_export_name("/").is_ok());
        for bad in ["exports", "/a/../b", "/a//b", "/a/"] {
            assert!(validate_export_name(bad).is_err(), "{bad}");
        }
    }
}
