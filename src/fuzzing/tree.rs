//! Putting the dispatch targets' fixed tree back after a call changed it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Modes, owners and sizes of the fixed objects as `rebuild_tree` made them.
pub(super) fn reset_attributes(root: &Path) {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    for (name, mode) in [
        ("", 0o777),
        ("file", 0o666),
        ("dir", 0o777),
        ("dir/inner", 0o666),
    ] {
        let p = root.join(name);
        let _ = std::os::unix::fs::chown(&p, Some(uid), Some(gid));
        let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode));
    }
    let _ = std::os::unix::fs::lchown(root.join("link"), Some(uid), Some(gid));
    if let Ok(f) = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("file"))
    {
        let _ = f.set_len(4096);
    }
}

/// Removes every entry of `dir` but `keep` (whatever its modes say).
pub(super) fn clear_dir_except(dir: &Path, keep: &[&str]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if keep.iter().any(|k| e.file_name() == *k) {
            continue;
        }
        remove_tree(&e.path());
    }
}

pub(super) fn remove_tree(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
            clear_dir_except(p, &[]);
            let _ = std::fs::remove_dir(p);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

/// Exports left behind by fuzzing processes that have exited.
pub(super) fn remove_stale_exports(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("volnfs-fuzz-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            remove_tree(&e.path());
        }
    }
}
