#!/usr/bin/env bash
# The fuzzing campaign: runs every target (or the ones named) for RUNS
# executions each, one target at a time at the lowest priority (this machine
# has two cores and is shared), starting from the committed corpus; then
# minimizes the grown corpus back into fuzz/corpus/TARGET (cargo fuzz cmin)
# and writes fuzz/RESULTS.md: per target the executions, execs/s, coverage
# (libFuzzer's final cov/ft), corpus size, peak RSS and crashes.
#
#   bash fuzz/campaign.sh                       # 10 M executions per target
#   VOLNFS_FUZZ_RUNS=1000000 bash fuzz/campaign.sh nfs3 mount
#   VOLNFS_FUZZ_MAX_TIME=600 bash fuzz/campaign.sh   # and at most 10 min each
#   bash fuzz/campaign.sh --results   # only rewrite RESULTS.md (after editing NOTES.md)
#   bash fuzz/campaign.sh --top-up control nfs3   # continue each target up to RUNS in all
#
# --top-up continues a target from its committed (already grown and minimized) corpus
# for the executions its previous row lacks to reach RUNS, and writes the row as the sum
# of the runs: execs and seconds added, peak RSS the larger, crashes added, coverage and
# corpus of the last run. libFuzzer's state between runs is the corpus, so a run of 3 M
# after one of 7 M from its corpus explores what one 10 M run would, minus the restart.
#
# Every run uses -rss_limit_mb=256 and -timeout=25 (seconds per input; the
# harness itself reports a call unanswered after 20 s as a hang). A crash,
# hang or memory blowup stops that target's run (libFuzzer does) and leaves
# the input in fuzz/artifacts/TARGET/; the campaign goes on with the next
# target and counts it. Results of targets not run this time are kept from
# the previous RESULTS.md (fuzz/results/*.tsv hold them).
set -euo pipefail
{ # one compound command: bash parses it whole, so editing this file during a campaign
  # (hours) cannot break the run in progress (it once did, at its last step)
cd "$(dirname "$0")"
write_results() {
  {
    echo "# Fuzzing results"
    echo
    echo "Written by \`fuzz/campaign.sh\` (last run $(date -u '+%Y-%m-%d %H:%M UTC'), on $(nproc) cores, \`nice -n 19\`, one target per run; NOTES.md says which runs shared the box)."
    echo "Each target starts from its committed corpus; \`-rss_limit_mb=256 -timeout=25\`; cov/ft are the"
    echo "edge and feature counts of libFuzzer's last status line; corpus is after \`cargo fuzz cmin\`;"
    echo "crashes counts the inputs left in \`fuzz/artifacts/\` by that run (crash, hang or memory blowup)."
    echo
    echo "| target | execs | seconds | execs/s | cov | ft | corpus files | corpus bytes | peak RSS MB | crashes | date |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for f in results/*.tsv; do
      awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11}' "$f"
    done
    echo
    cat NOTES.md
  } >RESULTS.md
  echo "== wrote fuzz/RESULTS.md"
}
if [ "${1:-}" = --results ]; then write_results; exit 0; fi
top_up=0
if [ "${1:-}" = --top-up ]; then top_up=1; shift; fi

runs=${VOLNFS_FUZZ_RUNS:-10000000}
max_time=${VOLNFS_FUZZ_MAX_TIME:-0}
export CARGO_TARGET_DIR=${VOLNFS_FUZZ_TARGET_DIR:-/var/tmp/volnfs-fuzz-target}
bindir=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release
# ASan keeps freed memory in a quarantine (up to 256 MB by default) to catch use after
# free; counted in the process's RSS, it alone reached the 256 MB limit after ~2 M runs of
# the nfs3 target (live heap 29 MB, quarantine 151 MB at 222 MB RSS). 32 MB of quarantine
# keeps use-after-free detection for the recent frees and leaves -rss_limit_mb=256 to
# measure what the server holds.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=32}
# The dispatch targets serve a temporary export in $TMPDIR (default /tmp) and the harness
# recreates its tree outside the server by the million. Keep it on ext4 (as /tmp is
# here): on a tmpfs the nfs3 target's RSS climbed 130 -> 206 MB in 8 min (2026-12-07),
# headed for -rss_limit_mb, with ~5,000 descriptors of deleted objects open (the server's
# caches) — most likely the in-memory handle index keeping an entry per vanished object,
# since tmpfs never reuses an inode number and ext4 does (on ext4 RSS stays ~130-160 MB).
# On ext4 the churn costs time instead (inode allocation skips recently deleted inodes:
# a third of the samples at 1.3k exec/s).
work=$(mktemp -d /var/tmp/volnfs-campaign.XXXXXX)
trap 'rm -rf "$work"' EXIT

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "== building the fuzz targets (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
nice -n 19 cargo +nightly fuzz build

mkdir -p results artifacts
for t in "${targets[@]}"; do
  prev_execs=0 prev_secs=0 prev_rss=0 prev_crashes=0
  if [ "$top_up" = 1 ] && [ -f "results/$t.tsv" ]; then
    IFS=$'\t' read -r _ prev_execs prev_secs _ _ _ _ _ prev_rss prev_crashes _ <"results/$t.tsv"
  fi
  want=$((runs - prev_execs))
  if [ "$want" -le 0 ]; then echo "== $t: already at $prev_execs executions"; continue; fi
  echo "== $t: $want executions (after $prev_execs)$([ "$max_time" != 0 ] && echo ", at most ${max_time}s")"
  mkdir -p "corpus/$t" "artifacts/$t" "$work/$t"
  cp -a "corpus/$t/." "$work/$t/"
  before=$(find "artifacts/$t" -type f | wc -l)
  start=$(date +%s)
  set +e
  nice -n 19 "$bindir/$t" -runs="$want" -max_total_time="$max_time" \
    -rss_limit_mb=256 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" "$work/$t" >"$work/$t.log" 2>&1
  rc=$?
  set -e
  secs=$(($(date +%s) - start))
  crashes=$(($(find "artifacts/$t" -type f | wc -l) - before))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$work/$t.log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$work/$t.log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  if [ "$rc" != 0 ]; then
    echo "   exit $rc; the end of its log:"
    grep -vE '^#[0-9]+' "$work/$t.log" | tail -40 | sed 's/^/   | /'
  fi
  echo "== $t: cmin"
  cp -a "$work/$t/." "corpus/$t/"
  nice -n 19 cargo +nightly fuzz cmin "$t" "corpus/$t" -- -rss_limit_mb=256 -timeout=25 \
    >"$work/$t.cmin.log" 2>&1 || { tail -20 "$work/$t.cmin.log"; exit 1; }
  if [ "$top_up" = 1 ]; then
    execs=$((${execs:-0} + prev_execs)) secs=$((secs + prev_secs))
    crashes=$((crashes + prev_crashes)) eps=$((execs / (secs > 0 ? secs : 1)))
    [ "${rss:-0}" -ge "$prev_rss" ] 2>/dev/null || rss=$prev_rss
  fi
  files=$(find "corpus/$t" -type f | wc -l)
  bytes=$(du -sb "corpus/$t" | cut -f1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "${execs:-0}" "$secs" "${eps:-0}" \
    "${cov:-?}" "${ft:-?}" "$files" "$bytes" "${rss:-?}" "$crashes" "$(date -u +%Y-%m-%d)" \
    >"results/$t.tsv"
  echo "   execs ${execs:-0} in ${secs}s (${eps:-0}/s), cov ${cov:-?} ft ${ft:-?}, corpus $files files, crashes $crashes"
done

write_results
exit 0 # before bash reads past the block: the file may have changed since it started
}
