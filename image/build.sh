#!/usr/bin/env bash
#
# Assembles the volnfs zone image's file tree (proto) and packs it into a
# reproducible tarball, plus the IMGAPI manifest for it. See image/README.md.
#
#   image/build.sh                      # cargo build --release, then pack
#   VOLNFS_BIN=target/release/volnfs image/build.sh   # pack a prebuilt binary
#   TARGET=x86_64-unknown-illumos image/build.sh      # cross build (needs an illumos sysroot)
#
# Environment:
#   OUT               output directory              [target/image]
#   VOLNFS_BIN        prebuilt binary to install    [build one]
#   TARGET            rustc target for the build    [host]
#   VERSION           image version                 [Cargo.toml version]
#   ORIGIN_UUID       base image (e.g. minimal-64-lts) the zone dataset is made on [omitted]
#   SOURCE_DATE_EPOCH mtime of every file, and published_at [last commit time, else 0]
#   TAR               GNU tar (gtar on SmartOS)     [tar]
#
# Needs bash >= 4.2, GNU tar, gzip, cp/chmod/find, sha256sum (or illumos digest).
#
# Output: $OUT/proto/ (the tree), $OUT/volnfs-$VERSION.tar.gz (the tree, sorted,
# owner root:root numeric, fixed mtimes, gzip without name/time), and
# $OUT/volnfs-$VERSION.manifest.json. Building twice gives identical bytes.
set -o errexit -o nounset -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=${OUT:-$REPO/target/image}
TAR=${TAR:-tar}

fail() { echo "image/build.sh: $*" >&2; exit 1; }

"$TAR" --version 2>/dev/null | grep -q 'GNU tar' || fail "$TAR is not GNU tar (set TAR=gtar)"

VERSION=${VERSION:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -n 1)}
[[ -n $VERSION ]] || fail "no version in Cargo.toml; set VERSION"
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || echo 0)
fi
[[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]] || fail "SOURCE_DATE_EPOCH must be seconds since 1970"
export SOURCE_DATE_EPOCH

if [[ -n ${VOLNFS_BIN:-} ]]; then
    BIN=$VOLNFS_BIN
else
    (cd "$REPO" && cargo build --release --locked ${TARGET:+--target "$TARGET"})
    BIN=$REPO/target/${TARGET:+$TARGET/}release/volnfs
fi
[[ -x $BIN ]] || fail "binary $BIN is missing or not executable"

# The tree, relative to the zone root. Paths here are what smf/manifest.xml
# and the boot scripts name; tests/packaging.rs checks they agree.
PROTO=$OUT/proto
rm -rf "$PROTO"
# (cp + chmod rather than install(1): illumos's /usr/sbin/install is SysV's.)
put() { # MODE SOURCE DEST
    mkdir -p "$(dirname "$3")"
    cp "$2" "$3"
    chmod "$1" "$3"
}
put 0755 "$BIN" "$PROTO/opt/volnfs/bin/volnfs"
put 0644 "$REPO/etc/volnfs.example.json" "$PROTO/opt/volnfs/etc/volnfs.example.json"
put 0444 "$REPO/smf/manifest.xml" "$PROTO/var/svc/manifest/site/volnfs.xml"
put 0755 "$HERE/boot/setup.sh" "$PROTO/opt/smartdc/boot/setup.sh"
put 0755 "$HERE/boot/configure.sh" "$PROTO/opt/smartdc/boot/configure.sh"
put 0644 "$HERE/boot/volnfs-metadata.sh" "$PROTO/opt/smartdc/boot/volnfs-metadata.sh"
# Directory modes must not depend on the builder's umask.
find "$PROTO" -type d -exec chmod 0755 {} +

TARBALL=$OUT/volnfs-$VERSION.tar.gz
(cd "$PROTO" && "$TAR" --sort=name --format=gnu \
    --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    -cf - opt var) | gzip -n >"$TARBALL.tmp"
mv -f "$TARBALL.tmp" "$TARBALL"

# A stable UUID for this exact content (name-based, version 5 layout).
if command -v sha256sum >/dev/null; then
    SUM=$(sha256sum "$TARBALL" | cut -c1-64)
else
    SUM=$(digest -a sha256 "$TARBALL") # illumos
fi
[[ $SUM =~ ^[0-9a-f]{64}$ ]] || fail "cannot compute the tarball's SHA-256"
UUID="${SUM:0:8}-${SUM:8:4}-5${SUM:13:3}-8${SUM:17:3}-${SUM:20:12}"
# bash's own strftime: neither GNU `date -d` nor BSD `date -r` on illumos.
TZ=UTC0 printf -v PUBLISHED '%(%Y-%m-%dT%H:%M:%SZ)T' "$SOURCE_DATE_EPOCH"

MANIFEST=$OUT/volnfs-$VERSION.manifest.json
if [[ -n ${ORIGIN_UUID:-} ]]; then drop_origin=''; else drop_origin='/@@ORIGIN@@/d'; fi
sed -e "$drop_origin" \
    -e "s/@@UUID@@/$UUID/" -e "s/@@VERSION@@/$VERSION/" \
    -e "s/@@ORIGIN@@/${ORIGIN_UUID:-}/" -e "s/@@PUBLISHED_AT@@/$PUBLISHED/" \
    "$HERE/manifest.json" >"$MANIFEST"
if grep -q '@@' "$MANIFEST"; then fail "unfilled placeholder in $MANIFEST"; fi

echo "proto    $PROTO"
echo "tarball  $TARBALL sha256=$SUM"
echo "manifest $MANIFEST uuid=$UUID version=$VERSION"
