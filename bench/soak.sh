#!/usr/bin/env bash
# Soak: many connections, mixed idle and busy, for a long time, on loopback (issue 14).
#
#   bench/soak.sh [--minutes 10] [--idle 990] [--busy 10] [--dir DIR] [--skip-build] [--out DIR]
#
# One volnfs (release build, state on) serves a fresh directory. `--idle` connections are
# opened by bench/growth/probe.rs (each mounted, one GETATTR answered, then held without a
# call until the end); `--busy` libnfs clients (bench/client/nfsbench, one connection
# each) loop for the whole time over 30-second rounds of random reads, random writes,
# NULL and a create/stat/remove metadata run (round r of client i: workload (i + r) mod 4).
# Every 30 s the server's RSS, open descriptors and threads are sampled.
#
# Output (OUT, default bench/results/soak-YYYYmmdd-HHMMSS): samples.csv (t, rss_kb, fds,
# threads), runs.csv (client, round, workload, ok, ops/s, p50 µs, p99 µs), summary.md: RSS
# at start / after the ramp / at the end, the most descriptors, failed client runs, the
# server's WARN/ERROR lines, idle connections still answering at the end, and per
# workload the median ops/s and the median and worst p99 over the rounds.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/.." && pwd)
MINUTES=10; IDLE=990; BUSY=10; DIR=/var/tmp/volnfs-soak; SKIP_BUILD=0
OUT=$ROOT/bench/results/soak-$(date -u +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) MINUTES=$2; shift 2;;
    --idle) IDLE=$2; shift 2;;
    --busy) BUSY=$2; shift 2;;
    --dir) DIR=$2; shift 2;;
    --skip-build) SKIP_BUILD=1; shift;;
    --out) OUT=$2; shift 2;;
    *) echo "soak.sh: unknown option $1 (see the top of the file)" >&2; exit 2;;
  esac
done
NFS_PORT=24049; MNT_PORT=24048
VOLNFS=$ROOT/target/release/volnfs; PROBE=$ROOT/target/release/examples/growth
NFSBENCH=$HERE/client/nfsbench
if [ "$SKIP_BUILD" = 0 ]; then
  (cd "$ROOT" && cargo build --release --bin volnfs --example growth)
  make -C "$HERE/client" -s nfsbench
fi
for b in "$VOLNFS" "$PROBE" "$NFSBENCH"; do
  [ -x "$b" ] || { echo "soak.sh: $b is missing (run without --skip-build)" >&2; exit 2; }
done
mkdir -p "$OUT"; rm -rf "$DIR"; mkdir -p "$DIR/export" "$DIR/state"
ulimit -n 65536 2>/dev/null || true
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

RUST_LOG=${RUST_LOG:-warn} "$VOLNFS" serve --export "$DIR/export" --name /soak --listen 127.0.0.1 \
  --nfs-port $NFS_PORT --mount-port $MNT_PORT --no-portmap --state-dir "$DIR/state" \
  > "$DIR/volnfs.out" 2> "$DIR/volnfs.log" < /dev/null &
SPID=$!; PIDS+=("$SPID")
for _ in $(seq 600); do grep -q '^ready ' "$DIR/volnfs.out" && break; sleep 0.05; done
grep -q '^ready ' "$DIR/volnfs.out" || { echo "soak.sh: volnfs did not start:"; tail "$DIR/volnfs.log"; exit 1; }
sample() { # t -> "t,rss_kb,fds,threads"
  echo "$1,$(awk '/^VmRSS/{print $2}' /proc/$SPID/status),$(ls /proc/$SPID/fd | wc -l),$(awk '/^Threads/{print $2}' /proc/$SPID/status)"
}
echo "t_s,rss_kb,fds,threads" > "$OUT/samples.csv"
sleep 1; sample 0 >> "$OUT/samples.csv"; RSS0=$(awk '/^VmRSS/{print $2}' /proc/$SPID/status)

# The idle connections: held by one probe until its stdin closes.
exec {IDLE_IN}> >(exec "$PROBE" idle --port $NFS_PORT --mount-port $MNT_PORT --export /soak \
  --conns "$IDLE" > "$DIR/idle.out" 2>> "$DIR/idle.log")
for _ in $(seq 1200); do grep -q '^RESULT' "$DIR/idle.out" 2>/dev/null && break; sleep 0.1; done
IDLE_LINE=$(cat "$DIR/idle.out" 2>/dev/null || true)
echo "idle: $IDLE_LINE"
RSS_RAMP=$(awk '/^VmRSS/{print $2}' /proc/$SPID/status)

URL="nfs://127.0.0.1/soak?nfsport=$NFS_PORT&mountport=$MNT_PORT"
END=$(( $(date +%s) + MINUTES * 60 ))
echo "client,round,workload,ok,ops_per_s,p50_us,p99_us" > "$OUT/runs.csv"
busy() { # client
  local i=$1 r=0 w line ok rate p50 p99 f=soak-$1
  "$NFSBENCH" "$URL" seqwrite -f "$f.dat" -s 64M -b 1M -q 4 > /dev/null 2>> "$DIR/client-$i.log" || true
  while [ "$(date +%s)" -lt "$END" ]; do
    case $(( (i + r) % 4 )) in
      0) w=randread;  line=$("$NFSBENCH" "$URL" randread -f "$f.dat" -s 64M -b 4K -q 4 -t 30 2>> "$DIR/client-$i.log") ;;
      1) w=randwrite; line=$("$NFSBENCH" "$URL" randwrite -f "$f.dat" -s 64M -b 4K -q 4 -t 30 2>> "$DIR/client-$i.log") ;;
      2) w=null;      line=$("$NFSBENCH" "$URL" null -q 4 -t 30 2>> "$DIR/client-$i.log") ;;
      3) w=meta;      line=$("$NFSBENCH" "$URL" meta -d "soak-meta-$i-$r" -n 2000 -z 0 -q 4 2>> "$DIR/client-$i.log") ;;
    esac
    ok=$?
    # shellcheck disable=SC2001
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $line"; }
    if [ "$w" = meta ]; then rate=$(get ops_per_s); p50=$(get create_p50_us); p99=$(get create_p99_us)
    else rate=$(get iops); p50=$(get lat_p50_us); p99=$(get lat_p99_us); fi
    [ -n "$rate" ] || ok=1
    echo "$i,$r,$w,$([ "$ok" = 0 ] && echo 1 || echo 0),${rate:-},${p50:-},${p99:-}" >> "$OUT/runs.csv"
    r=$((r + 1))
  done
}
for i in $(seq 1 "$BUSY"); do busy "$i" & PIDS+=("$!"); done
t0=$(date +%s)
while [ "$(date +%s)" -lt "$END" ]; do
  sleep 30; sample $(( $(date +%s) - t0 )) >> "$OUT/samples.csv"
done
wait "${PIDS[@]:1}" 2>/dev/null || true
sample $(( $(date +%s) - t0 )) >> "$OUT/samples.csv"
RSS_END=$(awk '/^VmRSS/{print $2}' /proc/$SPID/status)
# Are the idle connections still served? The probe holds them; one more mount answers.
STILL=$("$PROBE" idle --port $NFS_PORT --mount-port $MNT_PORT --export /soak --conns 1 < /dev/null 2>/dev/null | head -1 || true)
exec {IDLE_IN}>&-
kill -0 "$SPID" 2>/dev/null && ALIVE=yes || ALIVE=no

python3 - "$OUT" "$RSS0" "$RSS_RAMP" "$RSS_END" "$IDLE_LINE" "$ALIVE" "$DIR/volnfs.log" "$MINUTES" "$BUSY" "$IDLE" "$STILL" <<'PY'
import csv, statistics, sys
out, rss0, ramp, end, idle, alive, log, minutes, busy, nidle, still = sys.argv[1:12]
runs = list(csv.DictReader(open(f"{out}/runs.csv")))
samples = list(csv.DictReader(open(f"{out}/samples.csv")))
warn = [l.rstrip() for l in open(log) if " WARN " in l or " ERROR " in l]
failed = [r for r in runs if r["ok"] != "1"]
L = [f"# soak: {minutes} min, {nidle} idle + {busy} busy connections (volnfs)", "",
     f"- idle connections: `{idle}`",
     f"- server alive at the end: {alive}; a new mount at the end: `{still or 'none'}`",
     f"- RSS: {int(rss0)/1024:.1f} MB at start, {int(ramp)/1024:.1f} MB with the idle connections, "
     f"{int(end)/1024:.1f} MB at the end (max {max(int(s['rss_kb']) for s in samples)/1024:.1f} MB)",
     f"- descriptors: max {max(int(s['fds']) for s in samples)}; threads max {max(int(s['threads']) for s in samples)}",
     f"- client runs: {len(runs)}, failed: {len(failed)}",
     f"- server WARN/ERROR lines: {len(warn)}", ""]
for l in warn[:10]:
    L.append(f"    {l[:200]}")
L += ["", "| workload | runs | median ops/s | median p50 µs | median p99 µs | worst p99 µs |", "|---|---:|---:|---:|---:|---:|"]
for w in ["randread", "randwrite", "null", "meta"]:
    rs = [r for r in runs if r["workload"] == w and r["ok"] == "1"]
    if not rs:
        continue
    f = lambda k: [float(r[k]) for r in rs if r[k]]
    L.append(f"| {w} | {len(rs)} | {statistics.median(f('ops_per_s')):,.0f} | {statistics.median(f('p50_us')):,.0f} | "
             f"{statistics.median(f('p99_us')):,.0f} | {max(f('p99_us')):,.0f} |")
open(f"{out}/summary.md", "w").write("\n".join(L) + "\n")
print("\n".join(L))
PY
echo "results in $OUT"
