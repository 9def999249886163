//! volnfs: a userland NFSv3 server for a ZFS volume, in one process.
//!
//! Data flows one way: bytes → record (`rpc::record`) → RPC call
//! (`rpc::msg`) → program (`portmap`, `mount`, `nfs3`) → export policy
//! (`exports`, `access`) → filesystem (`fs`) → reply bytes. `app` wires it up.

pub mod access;
pub mod app;
pub mod config;
pub mod exports;
pub mod fs;
pub mod logging;
pub mod mount;
pub mod nfs3;
pub mod portmap;
pub mod rpc;
pub mod xdr;
pub mod zfs;
pub mod zone;
