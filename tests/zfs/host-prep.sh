#!/bin/bash
# tests/zfs/host-prep.sh -- step 1: make Debian bookworm contrib visible to apt, install
# Debian's kernel + headers (ABI from the linux-image-amd64 metapackage), qemu, busybox,
# nfs-common (mount.nfs for the guest), and download (not install) the OpenZFS debs.
# Idempotent. Writes $CACHE/kabi and $CACHE/debs/*.deb. Must run as root.
set -euo pipefail
CACHE=${ZFS_TEST_CACHE:-/var/tmp/zfs-vm}
mkdir -p "$CACHE/debs"
t0=$(date +%s)
SRC=/etc/apt/sources.list.d/zfs-vm-contrib.sources
if ! grep -rqsw 'contrib' /etc/apt/sources.list.d/ /etc/apt/sources.list; then
  cat > "$SRC" <<'EOS'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
fi
apt-get -o DPkg::Lock::Timeout=600 update -qq
KABI=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-\(.*\)$/\1/p' | head -1)
[ -n "$KABI" ] || { echo "cannot read the kernel ABI from linux-image-amd64" >&2; exit 1; }
echo "zfs-test: kernel ABI $KABI" >&2
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  "linux-image-$KABI" "linux-headers-$KABI" qemu-system-x86 busybox-static cpio gzip python3 \
  nfs-common binutils kmod make gcc >/dev/null
cd "$CACHE/debs"
# only fetch when the candidate version is not already here
for p in zfs-dkms zfsutils-linux libzfs4linux libnvpair3linux libuutil3linux libzpool5linux libzfsbootenv1linux; do
  v=$(apt-cache policy "$p" | sed -n 's/^ *Candidate: //p'); [ -n "$v" ] && [ "$v" != "(none)" ] || { echo "no candidate for $p (is contrib enabled?)" >&2; exit 1; }
  ls "${p}_${v//:/%3a}_"*.deb >/dev/null 2>&1 || apt-get -o APT::Sandbox::User=root download -qq "$p"
done
echo "$KABI" > "$CACHE/kabi"
echo "zfs-test: host prep $(( $(date +%s) - t0 ))s" >&2
