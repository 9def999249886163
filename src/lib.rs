//! volnfs: a userland NFSv3 server for a ZFS volume, in one process.
//!
//! Data flows one way: bytes → record (`rpc::record`) → RPC call
//! (`rpc::msg`) → program (`portmap`, `mount`, `nfs3`) → export policy
//! (`exports`, `access`) → filesystem (`fs`) → reply bytes. `app` wires it up.

pub mod access;
pub mod app;
pub mod config;
pub mod control;
pub mod dataset;
pub mod exports;
pub mod fs;
/// Entry points for the fuzz targets in `fuzz/` only (not an API).
#[doc(hidden)]
pub mod fuzzing;
pub mod iopool;
pub mod logging;
pub mod mount;
pub mod nfs3;
pub mod nlm;
pub mod portmap;
pub mod rpc;
pub mod service;
pub mod sys;
pub mod tasks;
pub mod xdr;
pub mod zone;

/// Formats an error with its whole cause chain ("a: b: c"), for logs and
/// control-socket messages.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Replaces a small state file (handle keys, the lock-holder record) so that
/// a crash leaves either the old or the new contents, never a mix: written
/// readable by root only to a temporary beside it, fsync'd, renamed over it,
/// and the directory fsync'd so the rename itself is durable.
pub fn write_private_file_atomically(
    path: &std::path::Path,
    tmp_extension: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(tmp_extension);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
