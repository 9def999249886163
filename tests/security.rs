//! Issue 4 with real clients: export policy by client address (127.0.0.1 vs 127.0.0.2 vs ::1,
//! bind-before-connect on loopback; libnfs from another source address in a private network
//! namespace), AUTH_SYS credentials and POSIX permissions (`nfs3_client` with chosen creds,
//! libnfs `uid=`/`gid=`), squash modes, escape attempts (`..`, symlinks to /etc, forged and
//! foreign handles) and `volnfs check-config`.
//!
//! Runs the real `volnfs serve --config FILE` on temporary exports with ephemeral ports
//! (`support::Server::builder()`). Most tests need root (files owned by other users,
//! privileged ports, network namespaces) and are `#[ignore = "needs root"]`; the
//! `check-config` ones run anywhere. Needs `libnfs-utils` and `iproute2`.
//! Run: `cargo test --test security -- --include-ignored` (as root).

#[path = "security/harness.rs"]
mod harness;
#[path = "security/ops.rs"]
mod ops;
mod support;

#[path = "security/access.rs"]
mod access;
#[path = "security/config.rs"]
mod config;
#[path = "security/creds.rs"]
mod creds;
#[path = "security/escapes.rs"]
mod escapes;
#[path = "security/ownership.rs"]
mod ownership;
#[path = "security/policy.rs"]
mod policy;
#[path = "security/reload_udp_libnfs.rs"]
mod reload_udp_libnfs;
#[path = "security/squash.rs"]
mod squash;
