//! Entry points for the coverage-guided fuzz targets in `fuzz/`, and for
//! nothing else: not a stable API, hidden from the docs.
//!
//! Two kinds of entry point. The pure ones run one decoder or parser over
//! the fuzzer's bytes (record marking, the RPC call header, the 22 NFSv3
//! argument decoders, the config file, zone metadata, a control line) and
//! check what the decoder promises. The [`Server`] ones drive the real
//! dispatcher: a server started once per process by [`crate::app::start`]
//! on a temporary export, each call parsed by [`Dispatcher::parse`] and run
//! by [`Dispatcher::run`] into a sink that collects the reply, exactly as a
//! transport would. A call that neither answers nor lets go of its reply
//! within [`HANG_LIMIT`] is reported as a hang (a panic, which the fuzzer
//! records as a crash).
//!
//! File handles carry a MAC, so the fuzzer cannot make one; in the argument
//! bytes of a dispatch target, every 4-byte word `0xFEEDF0nn` is replaced by
//! the XDR `nfs_fh3` of the server's `nn`-th known object (the export root,
//! `file`, `dir`, `dir/inner`, `link`; see [`HANDLE_TOKEN`]). Calls that
//! change the tree are followed by putting the tree back, so every input
//! meets the same export.

use std::path::Path;
use std::time::Duration;

use crate::rpc::msg::{self, MSG_CALL, RPC_VERSION};
use crate::xdr::Writer;

/// A call that takes longer than this to answer (or to be dropped) hangs.
pub const HANG_LIMIT: Duration = Duration::from_secs(20);

/// The high 24 bits of a handle token; the low 8 bits pick the object.
pub const HANDLE_TOKEN: u32 = 0xFEED_F000;

/// The record-size limit the transports use.
pub fn max_record() -> usize {
    crate::rpc::server::Limits::default().max_record
}

/// Polls a future that never waits on anything but its in-memory input
/// (the record and line readers over a byte slice) to completion.
fn poll_ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Record marking: reads records from `bytes` until the stream ends or a
/// record is refused, with a limit of `max` bytes; returns the records.
pub fn records(bytes: &[u8], max: usize) -> Vec<Vec<u8>> {
    let mut r = bytes;
    let mut out = Vec::new();
    loop {
        let mut buf = Vec::new();
        match poll_ready(crate::rpc::record::read_record(&mut r, &mut buf, max)) {
            Ok(true) => {
                assert!(buf.len() <= max, "a record longer than the limit");
                out.push(buf);
            }
            Ok(false) => return out,
            Err(_) => {
                // Refused before its bytes were buffered.
                assert!(buf.len() <= max, "buffered past the limit");
                return out;
            }
        }
    }
}

/// The RPC call header and its AUTH_SYS credential.
pub fn rpc_call(bytes: &[u8]) {
    if let Ok((h, args)) = msg::decode_call(bytes) {
        assert!(args.len() <= bytes.len());
        assert_eq!(&bytes[bytes.len() - args.len()..], args);
        if let msg::Auth::Sys(s) = h.auth {
            assert!(s.groups().len() <= msg::MAX_AUTH_SYS_GIDS as usize);
        }
    }
}

/// One NFSv3 argument decoder (`proc_` modulo 22, the table's row);
/// returns whether the arguments decoded.
pub fn nfs3_decode(proc_: u32, args: &[u8]) -> bool {
    use crate::nfs3::table::TABLE;
    let row = &TABLE[proc_ as usize % TABLE.len()];
    match (row.check)(args) {
        Ok(fh) => {
            assert!(fh.len() <= 64, "a handle longer than NFS3_FHSIZE");
            true
        }
        Err(_) => false,
    }
}

/// The config file: parsed and validated (`check-config`).
pub fn config_file(text: &str) {
    let _ = crate::config::Config::parse(text, Path::new("/fuzz/volnfs.json"));
}

/// Zone metadata, through everything `zone-config` and `zone-setup`
/// derive from it without I/O. A config that `zone-config` would write
/// must load back (`volnfs serve --config` reads what it wrote).
pub fn zone_metadata(text: &str) {
    let Ok(md) = crate::zone::Metadata::parse(text) else {
        return;
    };
    let _ = crate::zone::setup_plan(&md);
    let Ok(file) = crate::zone::config_from_metadata(&md, Path::new("/exports")) else {
        return;
    };
    if file.validate().is_err() {
        return;
    }
    let written = serde_json::to_string_pretty(&file).expect("a ConfigFile serialises");
    if let Err(e) = crate::config::Config::parse(&written, Path::new("/fuzz/generated.json")) {
        panic!(
            "zone-config wrote a config that does not load: {}\n{written}",
            crate::error_chain(&e)
        );
    }
}

/// The control-socket request parser alone (no server).
pub fn control_parse(line: &[u8]) {
    let _ = crate::control::protocol::parse_request(line);
}

/// Who a dispatch target's call claims to be.
#[derive(Debug, Clone, Copy)]
pub enum Caller {
    Root,
    User,
    Nobody,
    AuthNone,
}

impl Caller {
    pub fn from_bits(b: u8) -> Caller {
        match b & 3 {
            0 => Caller::Root,
            1 => Caller::User,
            2 => Caller::Nobody,
            _ => Caller::AuthNone,
        }
    }
}

/// The transport and caller a dispatch target's flags byte picks: bit 0
/// UDP, bits 1-2 the caller (the same layout in every dispatch target).
pub fn transport_and_caller(flags: u8) -> (crate::rpc::Transport, Caller) {
    let transport = if flags & 1 == 0 {
        crate::rpc::Transport::Tcp
    } else {
        crate::rpc::Transport::Udp
    };
    (transport, Caller::from_bits(flags >> 1))
}

/// An RPC call message with a valid header and `args` as they are.
pub fn call_message(
    xid: u32,
    prog: u32,
    vers: u32,
    proc_: u32,
    who: Caller,
    args: &[u8],
) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(xid);
    w.u32(MSG_CALL);
    w.u32(RPC_VERSION);
    w.u32(prog);
    w.u32(vers);
    w.u32(proc_);
    let (uid, gid) = match who {
        Caller::Root => (0, 0),
        Caller::User => (1000, 1000),
        Caller::Nobody => (65534, 65534),
        Caller::AuthNone => {
            w.u32(msg::AUTH_NONE);
            w.opaque(&[]);
            w.u32(msg::AUTH_NONE);
            w.opaque(&[]);
            let mut v = w.into_inner();
            v.extend_from_slice(args);
            return v;
        }
    };
    let mut cred = Writer::new();
    cred.u32(0);
    cred.string(b"fuzz");
    cred.u32(uid);
    cred.u32(gid);
    cred.u32(1);
    cred.u32(gid);
    w.u32(msg::AUTH_SYS);
    w.opaque(&cred.into_inner());
    w.u32(msg::AUTH_NONE);
    w.opaque(&[]);
    let mut v = w.into_inner();
    v.extend_from_slice(args);
    v
}

mod server;
mod tree;
pub use server::{Server, PEER};
