#!/usr/bin/env bash
# CI's fuzz step: builds every fuzz target, runs each over its committed
# corpus (every input once: the regressions of past findings are in there),
# then fuzzes each briefly from a scratch copy of it. Any crash, hang or
# memory blowup fails the run, with the input left in fuzz/artifacts/TARGET/.
# About 3 minutes in all once the target directory is warm (see fuzz/README.md).
#
#   bash fuzz/smoke.sh                          # every target
#   VOLNFS_FUZZ_SMOKE_SECONDS=20 bash fuzz/smoke.sh nfs3
#
# The build is cargo-fuzz's default (optimised, with debug assertions and
# overflow checks), the same as the campaign's, kept outside the clone in
# VOLNFS_FUZZ_TARGET_DIR (default /var/tmp/volnfs-fuzz-target) so a run only
# recompiles volnfs itself and the targets (about 2 minutes; 15 cold).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${VOLNFS_FUZZ_SMOKE_SECONDS:-4}
export CARGO_TARGET_DIR=${VOLNFS_FUZZ_TARGET_DIR:-/var/tmp/volnfs-fuzz-target}
bindir=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release
work=$(mktemp -d /var/tmp/volnfs-fuzz-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
start=$(date +%s)
echo "== fuzz: building ${#targets[@]} targets (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo +nightly fuzz build
echo "== fuzz: built in $(($(date +%s) - start))s"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "artifacts/$t" "$work/$t"
  n=$(find "corpus/$t" -type f 2>/dev/null | wc -l)
  if [ "$n" = 0 ]; then
    echo "FAILED: fuzz target $t has no committed corpus (fuzz/corpus/$t)" >&2
    failed+=("$t")
    continue
  fi
  cp -a "corpus/$t/." "$work/$t/"
  # Every committed input once, then a few seconds of mutation. One
  # allocation above 256 MiB is a failure (input-sized allocations must be
  # bounded); the whole process may use more, because AddressSanitizer
  # keeps up to 256 MiB of freed memory in quarantine by itself (the
  # control target once crossed a 256 MiB RSS limit that way with 43 MiB
  # live, its input replaying in 12 ms).
  limits=(-malloc_limit_mb=256 -rss_limit_mb=2048 -timeout=25)
  if "$bindir/$t" -runs=0 "${limits[@]}" -artifact_prefix="artifacts/$t/" \
    "corpus/$t" >"$work/$t.log" 2>&1 &&
    "$bindir/$t" -max_total_time="$seconds" "${limits[@]}" \
      -artifact_prefix="artifacts/$t/" "$work/$t" >>"$work/$t.log" 2>&1; then
    echo "ok: $t ($n corpus inputs; $(grep -E '^#[0-9]+' "$work/$t.log" | tail -1))"
  else
    echo "FAILED: fuzz target $t; the end of its log:" >&2
    grep -vE '^#[0-9]+' "$work/$t.log" | tail -40 | sed 's/^/  | /' >&2
    ls "artifacts/$t" >&2
    failed+=("$t")
  fi
done
echo "== fuzz: $(($(date +%s) - start))s in all"
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
