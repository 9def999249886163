# Sourced by setup.sh and configure.sh: fetches zone metadata with mdata-get
# into the JSON file `volnfs zone-setup`/`zone-config --metadata` read.
# Logic lives in the binary; this only fetches and quotes.
#
# Overridable for tests on Linux: MDATA_GET, VOLNFS, VOLNFS_METADATA.

MDATA_GET=${MDATA_GET:-/usr/sbin/mdata-get}
VOLNFS=${VOLNFS:-/opt/volnfs/bin/volnfs}
# The last metadata fetched, kept for debugging (`cat` it to see what the
# config was made from).
VOLNFS_METADATA=${VOLNFS_METADATA:-/opt/volnfs/etc/zone-metadata.json}

# Prints $1 as a JSON string.
json_string() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    printf '"%s"' "$s"
}

# fetch_metadata KEY...: writes {"KEY": "value", ...} to $VOLNFS_METADATA
# with every key mdata-get knows. A key it does not know (exit 1) is left
# out, so volnfs reports it by name if it is required; any other failure of
# mdata-get stops the boot script.
fetch_metadata() {
    local key value rc sep='' body=''
    for key in "$@"; do
        rc=0
        value=$("$MDATA_GET" "$key") || rc=$?
        if [[ $rc -eq 0 ]]; then
            body+="$sep"$'\n'"  $(json_string "$key"): $(json_string "$value")"
            sep=','
        elif [[ $rc -ne 1 ]]; then
            echo "mdata-get $key failed (exit $rc)" >&2
            return 1
        fi
    done
    mkdir -p "$(dirname "$VOLNFS_METADATA")"
    (umask 077 && printf '{%s\n}\n' "$body" >"$VOLNFS_METADATA.tmp")
    mv -f "$VOLNFS_METADATA.tmp" "$VOLNFS_METADATA"
}
