//! First boot (`zone-setup`): the volume datasets under the delegated
//! dataset, with their refquota, and the handle-state directory. The only
//! part of `zone` that changes the system, through [`ZfsCli`].

use std::path::Path;

use crate::sys::zfs::{FailureKind, ZfsCli, ZfsError};

use super::{bad, delegated_dataset, keys, volume_names, Metadata, ZoneError, STATE_DIR_NAME};

/// What `zone-setup` needs: the delegated dataset, the volumes, their size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupPlan {
    pub delegated: String,
    pub volumes: Vec<String>,
    pub size_bytes: u64,
}

pub fn setup_plan(md: &Metadata) -> Result<SetupPlan, ZoneError> {
    let delegated = delegated_dataset(md)?;
    let volumes = volume_names(md)?;
    let mib: u64 = md
        .required_string(keys::SIZE_MIB)?
        .parse()
        .ok()
        .filter(|m| *m > 0)
        .ok_or_else(|| bad(keys::SIZE_MIB, "expected a positive whole number of MiB"))?;
    let size_bytes = mib
        .checked_mul(1 << 20)
        .ok_or_else(|| bad(keys::SIZE_MIB, "too large"))?;
    Ok(SetupPlan {
        delegated,
        volumes,
        size_bytes,
    })
}

/// What one volume looked like after `zone-setup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeState {
    pub dataset: String,
    pub created: bool,
    pub refquota: Option<u64>,
}

fn zfs_err(dataset: &str) -> impl FnOnce(ZfsError) -> ZoneError + '_ {
    move |source| ZoneError::Zfs {
        dataset: dataset.to_string(),
        source,
    }
}

/// `zone-setup` (first boot; safe to repeat): mounts the delegated dataset at
/// the exports root, creates each `<delegated>/<volume>` with `refquota` =
/// size (in one `zfs create`, so there is no moment without a limit), and
/// the state directory. An existing volume is left as it is: its refquota
/// may have been changed through the control socket since.
pub fn setup(
    zfs: &ZfsCli,
    plan: &SetupPlan,
    exports_root: &Path,
) -> Result<Vec<VolumeState>, ZoneError> {
    let d = &plan.delegated;
    let props = zfs.get(d, &["mountpoint"]).map_err(zfs_err(d))?;
    let root = exports_root.display().to_string();
    if props.value("mountpoint") != Some(root.as_str()) {
        tracing::info!(dataset = %d, mountpoint = %root, "mounting the delegated dataset");
        zfs.set(d, "mountpoint", &root).map_err(zfs_err(d))?;
    }
    // The state directory must land on the dataset, not on the zone root
    // beneath it (which an image upgrade replaces, taking the handle keys).
    let mounted = zfs.get(d, &["mounted"]).map_err(zfs_err(d))?;
    if mounted.value("mounted") != Some("yes") {
        return Err(ZoneError::NotMounted {
            dataset: d.clone(),
            mountpoint: root,
        });
    }
    let mut out = Vec::new();
    for v in &plan.volumes {
        let ds = format!("{d}/{v}");
        let created = match zfs.create(&ds, &[("refquota", plan.size_bytes.to_string())]) {
            Ok(()) => {
                tracing::info!(dataset = %ds, refquota = plan.size_bytes, "created the volume");
                true
            }
            Err(e) if e.kind() == Some(FailureKind::Exists) => false,
            Err(e) => return Err(zfs_err(&ds)(e)),
        };
        let props = zfs.get(&ds, &["refquota"]).map_err(zfs_err(&ds))?;
        let refquota = props
            .bytes("refquota")
            .map_err(|source| ZoneError::Property {
                dataset: ds.clone(),
                source,
            })?;
        if !created && refquota != Some(plan.size_bytes) {
            tracing::warn!(dataset = %ds, refquota = ?refquota, metadata = plan.size_bytes,
                "the volume exists with another refquota (resized through the control socket?); leaving it");
        }
        out.push(VolumeState {
            dataset: ds,
            created,
            refquota,
        });
    }
    let state = exports_root.join(STATE_DIR_NAME);
    create_private_dir(&state).map_err(|source| ZoneError::Write {
        path: state.clone(),
        source,
    })?;
    Ok(out)
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::test_metadata as md;

    #[test]
    fn setup_plan_reads_the_zone_and_size() {
        let p = setup_plan(&md(serde_json::json!({
            "sdc:uuid": "8f2c1d5e-0000-4000-8000-000000000001",
            "export-volumes": "[\"data\"]",
            "volume-size-mib": "10240",
        })))
        .unwrap();
        assert_eq!(
            p.delegated,
            "zones/8f2c1d5e-0000-4000-8000-000000000001/data"
        );
        assert_eq!(p.size_bytes, 10 << 30);
        let err = setup_plan(&md(
            serde_json::json!({"sdc:uuid": "z", "export-volumes": ["data"]}),
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("volume-size-mib"), "{err}");
        let err = setup_plan(&md(
            serde_json::json!({"export-volumes": ["data"], "volume-size-mib": 1}),
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("sdc:uuid"), "{err}");
    }
}
