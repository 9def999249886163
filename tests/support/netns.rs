//! Private network namespaces, so a test may own port 111 and many loopback addresses
//! without touching the host's. Needs root: tests that use them are
//! `#[ignore = "needs root"]`.

use std::process::Command;

/// Moves the calling thread into a new, empty network namespace with only `lo` up.
/// Processes it spawns and sockets it opens afterwards live there too.
/// Network namespaces are a Linux facility of the test host (the server under test does
/// not use them); elsewhere the tests that need one fail with this message.
pub fn enter_private_netns() {
    unshare_net();
    let status = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("run ip");
    assert!(status.success(), "ip link set lo up failed");
}

/// Runs `body` on a fresh thread that first enters a private network namespace
/// ([`enter_private_netns`]); a panic in `body` is the caller's panic.
pub fn in_private_netns<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    let result = std::thread::spawn(move || {
        enter_private_netns();
        body()
    })
    .join();
    match result {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[cfg(target_os = "linux")]
fn unshare_net() {
    // SAFETY: unshare(2) with CLONE_NEWNET only changes this thread's network namespace.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET) failed (the test needs root): {}",
        std::io::Error::last_os_error()
    );
}

#[cfg(not(target_os = "linux"))]
fn unshare_net() {
    panic!("this test needs a private network namespace, which only a Linux test host has");
}
