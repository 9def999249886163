//! What the security tests share beyond `support`: the client addresses they use, and one
//! import (`use crate::harness::*`) for the `support` items they need. Servers come from
//! `Server::builder()` in config-file mode (one `ExportSpec` per export).
#![allow(dead_code)]

use std::net::IpAddr;
use std::time::Duration;

#[allow(unused_imports)]
pub use crate::support::{
    bounded, dirop, getattr, in_private_netns, is_mnt_acces, mnt, mount_as, mount_client, nfs_from,
    none, ok, run_tool, status, tcp_from, tcp_from_privileged, udp_call_from, unix_credential,
    ExportSpec, Io, Nfs, RawArgs, Server,
};

pub const V4_ALLOWED: &str = "127.0.0.1";
pub const V4_OTHER: &str = "127.0.0.2";
pub const V6_LOOPBACK: &str = "::1";

/// How long an external tool (libnfs) may run.
pub const TOOL_LIMIT: Duration = Duration::from_secs(30);

/// The loopback addresses to listen on: 127.0.0.1, and ::1 when the machine has IPv6
/// (some CI containers do not; the IPv6 cases then say so loudly and are skipped).
pub fn loopback_listen() -> Vec<&'static str> {
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        vec![V4_ALLOWED, V6_LOOPBACK]
    } else {
        loud("SKIPPED the ::1 cases: no IPv6 loopback on this machine");
        vec![V4_ALLOWED]
    }
}

/// Writes straight to stderr, past the test harness's output capture, so a skip is seen.
fn loud(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {what} !!!!!!!!\n");
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal IP")
}
