#!/usr/bin/bash
#
# Every boot of a volnfs volume zone (the zone's user-script runs
# /opt/smartdc/boot/configure.sh from svc:/smartdc/mdata:execute, which the
# volnfs service waits for): write the server config from metadata — the
# exports and the client networks of the zone's NICs. After changing
# metadata on a running zone, run this again and `svcadm refresh volnfs`.
#
export PS4='[\D{%FT%TZ}] ${BASH_SOURCE}:${LINENO}: '
set -o errexit -o nounset -o pipefail
export PATH=/usr/bin:/usr/sbin

. "$(dirname "${BASH_SOURCE[0]}")/volnfs-metadata.sh"

fetch_metadata sdc:nics sdc:uuid export-volumes volnfs-delegated-dataset \
    volnfs-control-socket volnfs-control-connect volnfs-squash
exec "$VOLNFS" zone-config --metadata "$VOLNFS_METADATA" \
    --out "${VOLNFS_CONFIG:-/opt/volnfs/etc/volnfs.json}" \
    ${VOLNFS_EXPORTS_ROOT:+--exports-root "$VOLNFS_EXPORTS_ROOT"}
