//! The one harness of the integration tests (`mod support;` in each test binary).
//!
//! - [`Server`] / [`ServerBuilder`] (`server.rs`, `builder.rs`): the real `volnfs` binary
//!   on fresh temp exports, zero-config or from a config file the builder writes, with a
//!   private state dir and control socket; it waits for the `ready ...` stdout line (never
//!   sleeps), is killed on drop, restarts (SIGTERM or SIGKILL) on the same state, and
//!   prints its stderr tail when a test fails. `process.rs` is the level below (ready-line
//!   parsing, [`run_bounded`] for starts that must fail).
//! - `nfs.rs`: `nfs3_client` helpers, from 127.0.0.1 or a chosen source address.
//! - `rpc.rs`: raw ONC RPC over UDP and TCP. `netns.rs`: private network namespaces.
//!   `tools.rs`: external tools with time limits, test data.
//!
//! Tests that need root are `#[ignore = "needs root"]`, long ones `#[ignore = "slow"]`:
//! `cargo test` runs the rest, `cargo test -- --include-ignored` (as root, what CI runs)
//! everything. Each test binary uses a subset, hence `dead_code`.
#![allow(dead_code)]

mod builder;
mod netns;
mod nfs;
mod process;
mod rpc;
mod server;
mod stopped;
mod tools;

use std::future::Future;
use std::time::Duration;

// The flat API of the harness; each test binary uses part of it.
#[allow(unused_imports)]
pub use {
    builder::{ExportSpec, ServerBuilder, EXPORT_NAME},
    netns::{enter_private_netns, in_private_netns},
    nfs::*,
    process::{parse_ready_line, run_bounded, signal, spawn_ready, wait_with_timeout, Ready, BIN},
    rpc::*,
    server::Server,
    stopped::Stopped,
    tools::*,
};

/// Whether the tests run as root (privileged source ports; the `needs root` tests).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs an async test body with an upper bound so a hung server fails instead of hanging CI.
pub async fn bounded<F: Future>(limit: Duration, fut: F) -> F::Output {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("test exceeded {limit:?}"))
}

/// Runs a future on a current-thread runtime, so every socket stays on this thread (and in
/// its network namespace), bounded at two minutes.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(120), fut).await })
        .expect("test exceeded 120s")
}
