//! Saved state at start: the export's handle key and its handle index in
//! the state directory, each refused or rebuilt as the damage requires.

use super::*;

/// Loads the export's handle key from the state directory, creating it on
/// first use (then `.1` is true: no handle was ever given out with it);
/// without a state directory the key lives only in memory.
///
/// A key that is missing while the export's index exists is not replaced:
/// the index says handles were given out, and a new key would turn every
/// one of them into a BADHANDLE for good. The operator decides (restore the
/// key, or move the index aside to start over).
pub(super) fn handle_key(
    state_dir: Option<&Path>,
    export_id: u32,
) -> Result<(HandleKey, bool), AppError> {
    let Some(dir) = state_dir else {
        let key = HandleKey::random().map_err(|source| AppError::Key {
            path: PathBuf::from("(memory)"),
            source,
        })?;
        return Ok((key, true));
    };
    let path = crate::fs::check::key_path(dir, export_id);
    match std::fs::read(&path) {
        Ok(b) if b.len() == 16 => {
            let mut k = [0u8; 16];
            k.copy_from_slice(&b);
            Ok((HandleKey(k), false))
        }
        Ok(b) => Err(AppError::KeyDamaged {
            index: crate::fs::check::index_path(dir, export_id),
            path,
            len: b.len(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let index = crate::fs::check::index_path(dir, export_id);
            if index.exists() {
                return Err(AppError::KeyLost { key: path, index });
            }
            let err = |source| AppError::KeyWrite {
                path: path.clone(),
                source,
            };
            create_private_dir(dir).map_err(err)?;
            let key = HandleKey::random().map_err(err)?;
            crate::write_private_file_atomically(&path, "tmp", &key.0).map_err(err)?;
            Ok((key, true))
        }
        Err(source) => Err(AppError::Key { path, source }),
    }
}

/// Creates the state directory readable by root only: it holds the handle
/// MAC keys (whoever reads them can forge handles) and the index.
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// Opens the export's persistent handle index under the state directory
/// (in memory without one); `.1` = the index can be trusted to hold every
/// handle given out, so a miss is STALE without walking the tree.
///
/// The index is a cache of what the tree says, so only an index that could
/// wrongly claim to be complete stops the server:
/// - new: trusted only if the key is new too (first start); a new index
///   beside an old key (the index was lost or moved aside) is rebuilt from
///   the tree on the first unknown handle;
/// - damaged (garbage, truncated, another format): moved aside, rebuilt;
/// - unwritable (full, over quota, an I/O error): removed — an index that
///   cannot be marked "in use" might say "complete" at the next start and
///   miss every handle given out meanwhile; unlink needs no space, even on
///   a full ZFS dataset — and the server runs on an index in memory,
///   rebuilt from the tree on the first unknown handle;
/// - unwritable and not removable (a read-only state_dir) or held by
///   another process: refused, for the operator.
pub(super) fn open_index(
    state_dir: Option<&Path>,
    export_id: u32,
    name: &str,
    new_key: bool,
) -> Result<(Store, bool), AppError> {
    use crate::fs::index::{IndexError, OpenFailure};
    let Some(dir) = state_dir else {
        tracing::warn!(
            export = name,
            "no state_dir: file handles will not survive a restart"
        );
        return Ok((Store::memory(), true));
    };
    let path = crate::fs::check::index_path(dir, export_id);
    let unwritable = |e: IndexError| match std::fs::remove_file(&path) {
        Err(re) if re.kind() != std::io::ErrorKind::NotFound => Err(AppError::IndexUnwritable {
            path: path.clone(),
            remove: re,
            source: Box::new(e),
        }),
        _ => {
            tracing::error!(export = name, index = %path.display(), error = %crate::error_chain(&e),
                "the handle index cannot be written: removed it, and serving with an index in memory, rebuilt from the tree on the first unknown handle (the handles clients hold stay valid); free space on the filesystem of state_dir, and the next start keeps the index on disk again");
            Ok((Store::memory(), false))
        }
    };
    let in_use = |e: IndexError| AppError::IndexInUse {
        path: path.clone(),
        source: Box::new(e),
    };
    match Store::open(&path) {
        Ok(o) => {
            if !o.complete && !o.created {
                tracing::warn!(export = name, index = %path.display(), "handle index was not closed cleanly: entries are verified on use; a handle it lacks is searched for in the directories changed since its last batch, then by a walk of the export");
            }
            if o.created && !new_key {
                tracing::warn!(export = name, index = %path.display(), "no handle index beside an existing handle key: it is rebuilt from the tree on the first unknown handle");
            }
            Ok((o.store, o.complete || (o.created && new_key)))
        }
        Err(e) => match e.failure() {
            OpenFailure::InUse => Err(in_use(e)),
            OpenFailure::Unwritable => unwritable(e),
            OpenFailure::Damaged => {
                let aside = path.with_extension(format!("damaged-{}", std::process::id()));
                tracing::error!(export = name, error = %crate::error_chain(&e), moved_to = %aside.display(), "handle index unusable; moving it aside and rebuilding it from the tree on the first unknown handle");
                if let Err(re) = std::fs::rename(&path, &aside) {
                    tracing::error!(export = name, index = %path.display(), error = %re, "cannot move the damaged handle index aside");
                }
                match Store::open(&path) {
                    Ok(o) => Ok((o.store, false)),
                    Err(e) if e.failure() == OpenFailure::InUse => Err(in_use(e)),
                    Err(e) => unwritable(e),
                }
            }
        },
    }
}
