#!/usr/bin/env bash
# Fuzz seeds from the Linux kernel NFS client: runs the kernel-client end to
# end test (tests/e2e, a QEMU guest mounting volnfs in a private network
# namespace) with tcpdump on the guest's tap, turns the calls the guest sent
# into RPC messages (pcap2rpc.py) and those into per-target seeds (split.py):
# the kernel's own argument shapes for NFSv3 (mount, untar, git, cp -a,
# chown, locks), MOUNT over UDP and TCP, portmap GETPORT, NLM and NSM.
#
#   bash fuzz/capture/kernel.sh [CORPUS_DIR]      # default fuzz/corpus
#
# Needs root and what tests/e2e/run.sh needs, plus tcpdump. Workloads:
# VOLNFS_CAPTURE_WORKLOADS (default "mounts owner df appmix", a few minutes
# under TCG). Minimize afterwards: `cargo +nightly fuzz cmin TARGET` in fuzz/.
set -euo pipefail
cd "$(dirname "$0")/../.."
corpus=${1:-fuzz/corpus}
command -v tcpdump >/dev/null || { echo "kernel.sh: needs tcpdump (apt-get install tcpdump)" >&2; exit 2; }
work=$(mktemp -d /var/tmp/volnfs-kcapture.XXXXXX)
trap 'rm -rf "$work"' EXIT
VOLNFS_E2E_PCAP=$work/kernel.pcap \
  VOLNFS_E2E_WORKLOADS=${VOLNFS_CAPTURE_WORKLOADS:-mounts owner df appmix} \
  bash tests/e2e/run.sh || echo "== the e2e run reported a failure (above); its traffic is used anyway"
[ -s "$work/kernel.pcap" ] || { echo "kernel.sh: nothing was captured" >&2; exit 1; }
python3 fuzz/capture/pcap2rpc.py "$work/kernel.pcap" 10.213.0.1 "$work/raw"
python3 fuzz/capture/split.py "$work/raw" "$corpus"
