#!/usr/bin/env bash
# Type-checks volnfs, its tests and benches for x86_64-unknown-illumos (the volume zone),
# with zero warnings allowed. Uses Debian's rustc-web/cargo-web (Rust 1.96 + std source:
# apt-get install rustc-web rust-web-src cargo-web) with -Zbuild-std, because no prebuilt
# illumos std exists here. This checks; it does not link: linking needs an illumos sysroot
# (libc, libnvpair, libsocket) that cannot be had on this machine, so no illumos binary is
# produced and nothing illumos-only runs here (docs/illumos.md says what that leaves).
#
#   bash tests/illumos/check.sh
#   VOLNFS_ILLUMOS_TARGET_DIR=/somewhere bash tests/illumos/check.sh   # cache location
set -euo pipefail
cd "$(dirname "$0")/../.."
for f in /usr/bin/rustc /usr/bin/cargo /usr/lib/rustlib/src/rust/library/std/Cargo.toml; do
  [ -e "$f" ] || { echo "illumos check: $f missing: apt-get install rustc-web rust-web-src cargo-web" >&2; exit 2; }
done
# Outside the clone: the build of std and every dependency for the target is kept
# between runs (~2.5 min cold, seconds warm).
target_dir=${VOLNFS_ILLUMOS_TARGET_DIR:-/var/tmp/volnfs-illumos/target}
mkdir -p "$target_dir"
echo "illumos check: $(/usr/bin/rustc --version), target dir $target_dir"
t0=$(date +%s)
# -D warnings applies to volnfs only: cargo caps lints of dependencies and of std.
RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 RUSTFLAGS="-D warnings" \
  CARGO_TARGET_DIR="$target_dir" \
  /usr/bin/cargo check -Zbuild-std=std,panic_abort --target x86_64-unknown-illumos --all-targets --locked
echo "illumos check: OK, no errors, no warnings ($(( $(date +%s) - t0 )) s)"
