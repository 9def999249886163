#!/usr/bin/bash
#
# First boot of a volnfs volume zone (the zone's user-script runs
# /opt/smartdc/boot/setup.sh once): create the volume dataset(s) under the
# delegated dataset with their refquota, and the handle-state directory.
# `volnfs zone-setup` does the work and is safe to run again.
#
export PS4='[\D{%FT%TZ}] ${BASH_SOURCE}:${LINENO}: '
set -o errexit -o nounset -o pipefail
export PATH=/usr/bin:/usr/sbin

. "$(dirname "${BASH_SOURCE[0]}")/volnfs-metadata.sh"

fetch_metadata sdc:uuid export-volumes volume-size-mib volnfs-delegated-dataset
exec "$VOLNFS" zone-setup --metadata "$VOLNFS_METADATA" --zfs "${ZFS:-/usr/sbin/zfs}" \
    ${VOLNFS_EXPORTS_ROOT:+--exports-root "$VOLNFS_EXPORTS_ROOT"}
