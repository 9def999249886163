//! The ZFS dataset backend: the volume is a child of the zone's delegated
//! dataset (`zones/<uuid>/data/<vol>`) whose `refquota` is the volume size
//! (ARCHITECTURE §5: a zone may set `refquota`, not `quota`, on its
//! delegated dataset). Everything goes through the `zfs` CLI runner in
//! `crate::sys::zfs`; output parsing is pure and tested on captured output.

use async_trait::async_trait;

use super::{Dataset, DatasetError, Snapshot, Space};
use crate::sys::zfs::{FailureKind, ParseError, ZfsCli, ZfsError};

pub struct ZfsDataset {
    pub cli: ZfsCli,
    /// e.g. `zones/<uuid>/data/vol`.
    pub name: String,
    /// Most snapshots allowed (RFD 26 "Limits"); `None` = no limit.
    pub snapshot_limit: Option<usize>,
}

/// Parses `zfs list -H -p -t snapshot -o name,creation,used,referenced`.
pub fn parse_snapshot_list(out: &str, dataset: &str) -> Result<Vec<Snapshot>, ParseError> {
    let mut snaps = Vec::new();
    for (i, line) in out.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 4 {
            return Err(ParseError::Fields {
                line: i + 1,
                expected: 4,
                found: f.len(),
            });
        }
        let Some(name) = f[0].strip_prefix(dataset).and_then(|r| r.strip_prefix('@')) else {
            continue; // a snapshot of another dataset (-d 1 lists only ours)
        };
        let num = |s: &str| s.parse::<u64>().unwrap_or(0);
        snaps.push(Snapshot {
            name: name.to_string(),
            created: num(f[1]),
            used: num(f[2]),
            referenced: num(f[3]),
        });
    }
    Ok(snaps)
}

impl ZfsDataset {
    fn err(&self, op: &'static str) -> impl Fn(ZfsError) -> DatasetError + '_ {
        move |source| DatasetError::Zfs {
            op,
            dataset: self.name.clone(),
            source: Box::new(source),
        }
    }

    fn list_snapshots(&self) -> Result<Vec<Snapshot>, DatasetError> {
        let args = [
            "list",
            "-H",
            "-p",
            "-t",
            "snapshot",
            "-o",
            "name,creation,used,referenced",
            "-s",
            "creation",
            "-d",
            "1",
            self.name.as_str(),
        ];
        let out = self.cli.run(&args).map_err(self.err("snapshot.list"))?;
        parse_snapshot_list(&out, &self.name).map_err(|source| DatasetError::Zfs {
            op: "snapshot.list",
            dataset: self.name.clone(),
            source: Box::new(ZfsError::Parse {
                argv: args.iter().map(|s| s.to_string()).collect(),
                source,
            }),
        })
    }

    fn props(&self, op: &'static str) -> Result<(Option<u64>, u64, u64, u64), DatasetError> {
        let p = self
            .cli
            .get(&self.name, &["refquota", "used", "available", "referenced"])
            .map_err(self.err(op))?;
        let b = |k| p.bytes(k).ok().flatten();
        // refquota 0 means "none".
        Ok((
            b("refquota").filter(|q| *q > 0),
            b("used").unwrap_or(0),
            b("available").unwrap_or(0),
            b("referenced").unwrap_or(0),
        ))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DatasetError> + Send + 'static,
) -> Result<T, DatasetError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(DatasetError::Internal(e.to_string())))
}

/// Shares the dataset with blocking closures (the runner spawns processes).
fn cloned(d: &ZfsDataset) -> ZfsDataset {
    ZfsDataset {
        cli: d.cli.clone(),
        name: d.name.clone(),
        snapshot_limit: d.snapshot_limit,
    }
}

#[async_trait]
impl Dataset for ZfsDataset {
    fn kind(&self) -> &'static str {
        "zfs"
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn space(&self) -> Result<Space, DatasetError> {
        let d = cloned(self);
        blocking(move || {
            let (quota, _used, available, referenced) = d.props("status")?;
            // What `df` shows in the volume: refquota bounds the dataset's own data.
            let size = quota.unwrap_or(referenced + available);
            Ok(Space {
                size,
                used: referenced,
                available: size.saturating_sub(referenced).min(available),
            })
        })
        .await
    }

    async fn snapshots(&self) -> Result<Vec<Snapshot>, DatasetError> {
        let d = cloned(self);
        blocking(move || d.list_snapshots()).await
    }

    async fn snapshot_create(&self, name: &str) -> Result<Snapshot, DatasetError> {
        let d = cloned(self);
        let name = name.to_string();
        blocking(move || {
            if let Some(limit) = d.snapshot_limit {
                let n = d.list_snapshots()?.len();
                if n >= limit {
                    return Err(DatasetError::SnapshotLimit {
                        dataset: d.name.clone(),
                        limit,
                    });
                }
            }
            let full = format!("{}@{}", d.name, name);
            d.cli
                .run(&["snapshot", &full])
                .map_err(|e| match e.kind() {
                    Some(FailureKind::Exists) => {
                        DatasetError::SnapshotExists { name: full.clone() }
                    }
                    _ => d.err("snapshot.create")(e),
                })?;
            d.list_snapshots()?
                .into_iter()
                .find(|s| s.name == name)
                .ok_or(DatasetError::SnapshotNotFound { name: full })
        })
        .await
    }

    async fn snapshot_delete(&self, name: &str) -> Result<(), DatasetError> {
        let d = cloned(self);
        let name = name.to_string();
        blocking(move || {
            let full = format!("{}@{}", d.name, name);
            d.cli
                .run(&["destroy", &full])
                .map(|_| ())
                .map_err(|e| match e.kind() {
                    Some(FailureKind::NotFound) => {
                        DatasetError::SnapshotNotFound { name: full.clone() }
                    }
                    Some(FailureKind::Busy) => DatasetError::Busy { what: full.clone() },
                    _ => d.err("snapshot.delete")(e),
                })
        })
        .await
    }

    async fn snapshot_rollback(&self, name: &str) -> Result<(), DatasetError> {
        let d = cloned(self);
        let name = name.to_string();
        blocking(move || {
            let full = format!("{}@{}", d.name, name);
            let snaps = d.list_snapshots()?;
            let Some(pos) = snaps.iter().position(|s| s.name == name) else {
                return Err(DatasetError::SnapshotNotFound { name: full });
            };
            let newer: Vec<String> = snaps[pos + 1..].iter().map(|s| s.name.clone()).collect();
            if !newer.is_empty() {
                // `zfs rollback -r` would destroy them: never do that silently.
                return Err(DatasetError::HasNewerSnapshots { name: full, newer });
            }
            d.cli
                .run(&["rollback", &full])
                .map(|_| ())
                .map_err(|e| match e.kind() {
                    Some(FailureKind::QuotaExceeded) => {
                        DatasetError::RollbackOverQuota { name: full.clone() }
                    }
                    Some(FailureKind::Busy) => DatasetError::Busy { what: full.clone() },
                    _ => d.err("snapshot.rollback")(e),
                })
        })
        .await
    }

    async fn quota(&self) -> Result<Option<u64>, DatasetError> {
        let d = cloned(self);
        blocking(move || Ok(d.props("quota.get")?.0)).await
    }

    async fn set_quota(&self, bytes: u64) -> Result<(), DatasetError> {
        let d = cloned(self);
        blocking(move || {
            let (_, _, _, referenced) = d.props("quota.set")?;
            if bytes < referenced {
                return Err(DatasetError::QuotaBelowUsage {
                    dataset: d.name.clone(),
                    requested: bytes,
                    referenced,
                });
            }
            d.cli
                .set(&d.name, "refquota", &bytes.to_string())
                .map_err(|e| match e.kind() {
                    Some(FailureKind::NoSpace) => DatasetError::QuotaBelowUsage {
                        dataset: d.name.clone(),
                        requested: bytes,
                        referenced,
                    },
                    _ => d.err("quota.set")(e),
                })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from `zfs list -H -p -t snapshot -o name,creation,used,referenced -s creation -d 1 tank/vol`
    // on OpenZFS 2.1.11.
    const CAPTURED: &str =
        "tank/vol@first\t1763775020\t0\t24576\ntank/vol@second\t1763775081\t13312\t1073866752\n";

    #[test]
    fn parses_captured_snapshot_list() {
        let s = parse_snapshot_list(CAPTURED, "tank/vol").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0],
            Snapshot {
                name: "first".into(),
                created: 1763775020,
                used: 0,
                referenced: 24576
            }
        );
        assert_eq!(s[1].referenced, 1073866752);
    }

    #[test]
    fn ignores_other_datasets_and_empty_output() {
        assert!(parse_snapshot_list("", "tank/vol").unwrap().is_empty());
        let other = "tank/volume2@x\t1\t2\t3\n";
        assert!(parse_snapshot_list(other, "tank/vol").unwrap().is_empty());
    }

    #[test]
    fn wrong_field_count_is_an_error() {
        assert!(parse_snapshot_list("tank/vol@a\t1\t2\n", "tank/vol").is_err());
    }
}
