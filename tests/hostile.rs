//! Hostile input over raw TCP/UDP against the real `volnfs` binary: lying record marks,
//! oversized credentials, wrong versions/programs/procedures/flavours, truncated arguments,
//! garbage, floods, and seeded mutations of valid NFSv3 calls. Each case checks the RPC-level
//! answer RFC 5531 prescribes (or that the connection is closed) and that the server still
//! answers NULL from a fresh connection afterwards.
//!
//! Needs: nothing beyond the Rust toolchain (std only; Linux /proc for the memory check).
//! Uses only 127.0.0.1 and ephemeral ports. Run: `cargo test --test hostile`.
//!
//! Layout: `hostile/rpc.rs` is a hand-rolled RPC client (records and headers built by hand so
//! they can lie), `support` starts the binary; the cases live in one file per area
//! (framing, header, arguments, udp, resources, fuzz); shared NFS helpers are below.

#[path = "hostile/rpc.rs"]
mod rpc;
mod support;

#[path = "hostile/arguments.rs"]
mod arguments;
#[path = "hostile/framing.rs"]
mod framing;
#[path = "hostile/fuzz.rs"]
mod fuzz;
#[path = "hostile/header.rs"]
mod header;
#[path = "hostile/resources.rs"]
mod resources;
#[path = "hostile/udp.rs"]
mod udp;

use rpc::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::Server;

const NFS_V3: u32 = 3;
const MOUNT_V3: u32 = 3;
const PMAP_V2: u32 = 2;

// NFSv3 procedures (RFC 1813)
const NFSPROC3_GETATTR: u32 = 1;
const NFSPROC3_SETATTR: u32 = 2;
const NFSPROC3_LOOKUP: u32 = 3;
const NFSPROC3_ACCESS: u32 = 4;
const NFSPROC3_READ: u32 = 6;
const NFSPROC3_WRITE: u32 = 7;
const NFSPROC3_CREATE: u32 = 8;
const NFSPROC3_MKDIR: u32 = 9;
const NFSPROC3_REMOVE: u32 = 12;
const NFSPROC3_RENAME: u32 = 14;
const NFSPROC3_READDIR: u32 = 16;
const NFSPROC3_READDIRPLUS: u32 = 17;
const NFSPROC3_FSSTAT: u32 = 18;
const NFSPROC3_FSINFO: u32 = 19;
const NFSPROC3_PATHCONF: u32 = 20;
const NFSPROC3_COMMIT: u32 = 21;
const MOUNTPROC3_MNT: u32 = 1;
const MOUNTPROC3_EXPORT: u32 = 5;
const PMAPPROC_GETPORT: u32 = 3;

/// The server under attack: zero-config on 127.0.0.1 with ephemeral ports (the portmapper
/// too), its export published under its own path (no `--name`).
fn start_server() -> Server {
    Server::builder().default_name().start()
}

/// A fresh connection to `addr` answers NFS NULL, and the process is alive.
fn assert_serves_null(srv: &mut Server, addr: SocketAddr) {
    srv.assert_alive();
    let mut c = Conn::connect(addr).expect("connect after hostile input");
    let r = c.call(&Call::null(0x4e55_4c4c, NFS_PROG, NFS_V3));
    assert_eq!(
        r.accept_stat(),
        Some(SUCCESS),
        "NULL after hostile input: {r:?}"
    );
}

fn assert_serves_null_everywhere(srv: &mut Server) {
    for a in [srv.nfs_addr(), srv.mount_addr(), srv.portmap_addr()] {
        assert_serves_null(srv, a);
    }
}

/// MOUNT3 MNT of the export; returns the root file handle.
fn mount_root(srv: &Server) -> Vec<u8> {
    let mut c = Conn::connect(srv.mount_addr()).unwrap();
    let path = srv.export_dir().to_str().unwrap().as_bytes().to_vec();
    let r = c.call(
        &Call::new(1, MOUNT_PROG, MOUNT_V3, MOUNTPROC3_MNT).args(Xdr::new().opaque(&path).bytes()),
    );
    let b = r.body();
    assert_eq!(r.accept_stat(), Some(SUCCESS), "MNT: {r:?}");
    assert_eq!(word(b, 0), 0, "MNT status for {:?}", srv.export_dir());
    let len = word(b, 4) as usize;
    assert!((1..=64).contains(&len), "root handle length {len}");
    b[8..8 + len].to_vec()
}

fn fh(x: Xdr, fh: &[u8]) -> Xdr {
    x.opaque(fh)
}

/// sattr3 with nothing set.
fn sattr_none(x: Xdr) -> Xdr {
    x.u32(0).u32(0).u32(0).u32(0).u32(0).u32(0)
}

/// NFS CREATE (UNCHECKED) of `name` in `dir`; returns the new file's handle.
fn create_file(c: &mut Conn, xid: u32, dir: &[u8], name: &str) -> Vec<u8> {
    let args = sattr_none(fh(Xdr::new(), dir).opaque(name.as_bytes()).u32(0)).bytes();
    let r = c.call(&Call::new(xid, NFS_PROG, NFS_V3, NFSPROC3_CREATE).args(args));
    let b = r.body();
    assert_eq!(r.accept_stat(), Some(SUCCESS), "CREATE: {r:?}");
    assert_eq!(word(b, 0), 0, "CREATE nfsstat3");
    assert_eq!(word(b, 4), 1, "CREATE returned no handle");
    let len = word(b, 8) as usize;
    b[12..12 + len].to_vec()
}

fn nfs(xid: u32, proc_: u32, args: Xdr) -> Call {
    Call::new(xid, NFS_PROG, NFS_V3, proc_).args(args.bytes())
}
