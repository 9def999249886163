#!/usr/bin/env bash
# Growth curves: how volnfs's costs grow with the size of what it serves, next to
# nfs-ganesha (and nfsserve's mirrorfs demo, and the local filesystem where it applies).
#
#   bench/growth.sh [options]
#
#   --tests LIST         readdir,restart,idle (default: all three)
#   --readdir-sizes L    entries per directory for READDIRPLUS (default 1000,10000,100000,1000000)
#   --index-sizes L      objects in the tree for the restart test (default 10000,100000,1000000)
#   --idle-conns N       connections for the idle test (default 1000)
#   --reps N             repetitions (default 3); servers interleaved, order alternating
#   --servers LIST       volnfs,ganesha,nfsserve (default: volnfs,ganesha, plus nfsserve
#                        when bench/peers/nfsserve.sh can build it)
#   --dir DIR            work directory (default /var/tmp/volnfs-growth); trees made here are
#                        kept between runs (marker files) unless --fresh-fs
#   --fresh-fs SIZE      a new ext4 of SIZE (loop device, inodes for every tree) on DIR
#   --skip-build         use target/release/volnfs and the probe as they are
#   --out DIR            results (default bench/results/growth-YYYYmmdd-HHMMSS)
#
# Tests (the client is bench/growth/probe.rs on nfs3_client; one connection, one call at a time):
#   readdir  a directory of N empty files listed completely with READDIRPLUS (maxcount 64 KiB):
#            pass 1 by a server just started (fresh state: nothing known about the entries),
#            pass 2 the same listing again; microseconds per entry. local: opendir + readdir +
#            fstatat per entry (localbench readdir).
#   restart  a tree of N files (1,000 per directory): the whole tree walked over NFS so every
#            object has a handle (volnfs records each in its index), one more file created,
#            and the server killed with SIGKILL right after CREATE's reply (its handle likely not
#            yet in the index: written in batches every 200 ms); then the server restarted on
#            the same state: time from exec to ready (volnfs's ready line; ganesha: the MOUNT),
#            RSS at ready, the first GETATTR of an old handle, of 50 old handles, and of the
#            fresh one (for volnfs an index miss after an unclean stop: the tree is walked),
#            RSS after.
#   idle     N connections, each mounted and one GETATTR answered, then held idle: server RSS
#            before and with them, per connection.
# Output: OUT/raw.csv (test,label,size,rep,metric,value), OUT/summary.md (min/median/max),
# OUT/*.png (gnuplot, if installed), OUT/log.txt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
TESTS=readdir,restart,idle; RD_SIZES=1000,10000,100000,1000000; IX_SIZES=10000,100000,1000000
IDLE=1000; REPS=3; SERVERS=""; DIR=/var/tmp/volnfs-growth; FRESH=""; BUILD=1; OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tests) TESTS=$2; shift 2;;
    --readdir-sizes) RD_SIZES=$2; shift 2;;
    --index-sizes) IX_SIZES=$2; shift 2;;
    --idle-conns) IDLE=$2; shift 2;;
    --reps) REPS=$2; shift 2;;
    --servers) SERVERS=$2; shift 2;;
    --dir) DIR=$2; shift 2;;
    --fresh-fs) FRESH=$2; shift 2;;
    --skip-build) BUILD=0; shift;;
    --out) OUT=$2; shift 2;;
    -h|--help) sed -n 2,36p "$0"; exit 0;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
OUT=${OUT:-$HERE/results/growth-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" "$DIR"
RAW=$OUT/raw.csv; LOG=$OUT/log.txt
echo "test,label,size,rep,metric,value" > "$RAW"; : > "$LOG"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
VOLNFS=$TARGET/release/volnfs PROBE=$TARGET/release/examples/growth
LB=$HERE/client/localbench
V_NFS=22149 V_MNT=22148 G_NFS=22049 G_MNT=22048 N_PORT=11111

if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && cargo build --release --bin volnfs --example growth) >&2
fi
make -s -C "$HERE/client" >&2; make -s -C "$HERE/shim" >&2
NFSSERVE=""
if [ -z "$SERVERS" ]; then
  SERVERS=volnfs,ganesha
  if NFSSERVE=$("$HERE/peers/nfsserve.sh" 2>>"$LOG"); then SERVERS+=,nfsserve
  else echo "# nfsserve not built (see $LOG): left out" | tee -a "$LOG"; fi
elif [[ ,$SERVERS, == *,nfsserve,* ]]; then NFSSERVE=$("$HERE/peers/nfsserve.sh")
fi
IFS=, read -r -a SLIST <<< "$SERVERS"

if [ -n "$FRESH" ]; then
  mountpoint -q "$DIR" && { echo "$DIR is already a mount point" >&2; exit 1; }
  inodes=$(( $(echo "$RD_SIZES,$IX_SIZES" | tr , '\n' | awk '{s+=$1} END{print s}') + 200000 ))
  rm -f "$DIR.img"; truncate -s "$FRESH" "$DIR.img"
  mkfs.ext4 -q -F -N "$inodes" -E lazy_itable_init=0,lazy_journal_init=0 "$DIR.img"
  mount -o loop "$DIR.img" "$DIR"
fi

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  "$HERE/ganesha.sh" stop --state "$DIR/ganesha" >/dev/null 2>&1 || true
  if [ -n "$FRESH" ] && mountpoint -q "$DIR"; then umount "$DIR" || umount -l "$DIR"; rm -f "$DIR.img"; fi
}
trap cleanup EXIT INT TERM

{
  echo "# growth run $(date -Is) on $(hostname), $(nproc) cpus, kernel $(uname -r), $(findmnt -no FSTYPE,SOURCE -T "$DIR")"
  echo "# tests=$TESTS readdir_sizes=$RD_SIZES index_sizes=$IX_SIZES idle=$IDLE reps=$REPS servers=$SERVERS"
  echo "# volnfs $(git -C "$ROOT" describe --always --dirty 2>/dev/null)"
} | tee -a "$LOG"

rec() { echo "$1,$2,$3,$4,$5,$6" >> "$RAW"; }          # test label size rep metric value
field() { local f; for f in $2; do [ "${f%%=*}" = "$1" ] && { echo "${f#*=}"; return; }; done; echo ""; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo ""; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# ---- servers: start_X EXPORT_DIR [STATE] sets SPID, SNFS, SMNT, SEXP, READY_MS
start_volnfs() {
  local exp=$1 state=$2 t0; t0=$(date +%s%N)
  : > "$DIR/volnfs.out"
  RUST_LOG=${RUST_LOG:-warn} "$VOLNFS" serve --export "$exp" --name /growth --listen 127.0.0.1 \
    --nfs-port $V_NFS --mount-port $V_MNT --no-portmap --state-dir "$state" \
    > "$DIR/volnfs.out" 2>> "$DIR/volnfs.log" < /dev/null &
  SPID=$!; PIDS+=("$SPID")
  for _ in $(seq 6000); do
    grep -q '^ready ' "$DIR/volnfs.out" && break
    kill -0 "$SPID" 2>/dev/null || { echo "volnfs exited; $DIR/volnfs.log:" >&2; tail -5 "$DIR/volnfs.log" >&2; exit 1; }
    sleep 0.01
  done
  READY_MS=$(ms_since "$t0"); SNFS=$V_NFS SMNT=$V_MNT SEXP=/growth
}
start_ganesha() {
  local exp=$1 t0; t0=$(date +%s%N)
  SPID=$("$HERE/ganesha.sh" start --export "$exp" --nfsport $G_NFS --mountport $G_MNT --state "$DIR/ganesha")
  PIDS+=("$SPID"); READY_MS=$(ms_since "$t0"); SNFS=$G_NFS SMNT=$G_MNT SEXP=$exp
}
start_nfsserve() {
  local exp=$1 t0; t0=$(date +%s%N)
  "$NFSSERVE" "$exp" > "$DIR/nfsserve.log" 2>&1 < /dev/null &
  SPID=$!; PIDS+=("$SPID")
  for _ in $(seq 3000); do ss -ltn "sport = :$N_PORT" | grep -q LISTEN && break; sleep 0.01; done
  READY_MS=$(ms_since "$t0"); SNFS=$N_PORT SMNT=$N_PORT SEXP=/
}
start() { "start_$1" "$2" "${3:-}"; }
stop() { # label [signal]
  if [ "$1" = ganesha ] && [ "${2:-TERM}" = TERM ]; then "$HERE/ganesha.sh" stop --state "$DIR/ganesha" >/dev/null; return; fi
  kill -"${2:-TERM}" "$SPID" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true
  [ "$1" = ganesha ] && rm -f "$DIR/ganesha/ganesha.pid"
  return 0
}
probe() { "$PROBE" "$1" --port "$SNFS" --mount-port "$SMNT" --export "$SEXP" "${@:2}" 2>>"$LOG" | tee -a "$LOG"; }
order() { # rep -> the servers, alternating direction
  local i n=${#SLIST[@]}
  if [ $(( $1 % 2 )) -eq 1 ]; then for ((i = 0; i < n; i++)); do echo "${SLIST[$i]}"; done
  else for ((i = n - 1; i >= 0; i--)); do echo "${SLIST[$i]}"; done; fi
}
tree() { # name files width: made once, kept (marker)
  local d=$DIR/trees/$1
  [ -f "$d.done" ] && return 0
  rm -rf "$d"; mkdir -p "$DIR/trees"
  echo "# making $d ($2 files, width $3)" | tee -a "$LOG"
  "$LB" "$DIR/trees" mkfiles -d "$1" -n "$2" -w "$3" | tee -a "$LOG"
  touch "$d.done"
}

# ---- readdir
if [[ ,$TESTS, == *,readdir,* ]]; then
  IFS=, read -r -a sizes <<< "$RD_SIZES"
  for n in "${sizes[@]}"; do
    tree "rd-$n" "$n" 0
    for rep in $(seq "$REPS"); do
      r=$("$LB" "$DIR/trees" readdir -d "rd-$n" | tee -a "$LOG")
      rec readdir local "$n" "$rep" us_per_entry "$(field us_per_entry "$r")"
      for s in $(order "$rep"); do
        rm -rf "$DIR/state"; start "$s" "$DIR/trees/rd-$n" "$DIR/state"
        if r=$(timeout 900 "$PROBE" readdir --port "$SNFS" --mount-port "$SMNT" --export "$SEXP" --dir / 2>>"$LOG"); then
          echo "$s rd-$n rep $rep: $r" | tee -a "$LOG"
          rec readdir "$s" "$n" "$rep" pass1_us_per_entry "$(field pass1_us_per_entry "$r")"
          rec readdir "$s" "$n" "$rep" pass2_us_per_entry "$(field pass2_us_per_entry "$r")"
          rec readdir "$s" "$n" "$rep" rss_kb "$(rss_kb "$SPID")"
        else echo "$s rd-$n rep $rep: FAILED or timed out (900 s)" | tee -a "$LOG"; rec readdir "$s" "$n" "$rep" failed 1; fi
        stop "$s"
      done
    done
  done
fi

# ---- restart after kill -9
if [[ ,$TESTS, == *,restart,* ]]; then
  IFS=, read -r -a sizes <<< "$IX_SIZES"
  for n in "${sizes[@]}"; do
    tree "ix-$n" "$n" 1000
    for rep in $(seq "$REPS"); do
      for s in $(order "$rep"); do
        [ "$s" = nfsserve ] && continue   # in-memory ids: its handles do not survive a restart
        exp=$DIR/trees/ix-$n h=$DIR/handles
        rm -rf "$DIR/state" "$h"; rm -f "$exp"/fresh-*
        start "$s" "$exp" "$DIR/state"
        r=$(probe walk --save "$h" --samples 50)
        rec restart "$s" "$n" "$rep" walk_us_per_object "$(field us_per_object "$r")"
        sleep 2   # the index's batches are committed (every 200 ms)
        rec restart "$s" "$n" "$rep" rss_before_kb "$(rss_kb "$SPID")"
        [ "$s" = volnfs ] && rec restart "$s" "$n" "$rep" index_kb "$(du -k "$DIR/state" | tail -1 | cut -f1)"
        probe create --name "fresh-$rep" --save "$h" > /dev/null
        stop "$s" KILL
        start "$s" "$exp" "$DIR/state"
        rec restart "$s" "$n" "$rep" ready_ms "$READY_MS"
        rec restart "$s" "$n" "$rep" rss_ready_kb "$(rss_kb "$SPID")"
        r=$(probe getattr --load "$h" --wait-secs 600)
        echo "$s ix-$n rep $rep: ready ${READY_MS} ms; $r" | tee -a "$LOG"
        for m in mounted_ms first_ms old_median_ms old_max_ms old_ok old_stale fresh_first_ms fresh_ok fresh_jukebox; do
          rec restart "$s" "$n" "$rep" "$m" "$(field "$m" "$r")"
        done
        rec restart "$s" "$n" "$rep" rss_after_kb "$(rss_kb "$SPID")"
        stop "$s"
      done
    done
  done
fi

# ---- idle connections
if [[ ,$TESTS, == *,idle,* ]]; then
  mkdir -p "$DIR/trees/idle"
  ulimit -n 65536 2>/dev/null || true
  for rep in $(seq "$REPS"); do
    for s in $(order "$rep"); do
      rm -rf "$DIR/state"; start "$s" "$DIR/trees/idle" "$DIR/state"
      sleep 1; r0=$(rss_kb "$SPID")
      coproc IDLEP { "$PROBE" idle --port "$SNFS" --mount-port "$SMNT" --export "$SEXP" --conns "$IDLE" 2>>"$LOG"; }
      line=""; read -r -t 600 line <&"${IDLEP[0]}" || true
      sleep 2; r1=$(rss_kb "$SPID")
      echo "$s idle rep $rep: $line; rss ${r0} -> ${r1} kB" | tee -a "$LOG"
      held=$(field conns "$line")
      if [ -n "$held" ] && [ "$held" -gt 0 ]; then
        # Per connection over those the server accepted (ganesha stops at its fd cap).
        rec idle "$s" "$IDLE" "$rep" conns_held "$held"
        rec idle "$s" "$IDLE" "$rep" rss_idle_kb "$r0"
        rec idle "$s" "$IDLE" "$rep" rss_conns_kb "$r1"
        rec idle "$s" "$IDLE" "$rep" kb_per_conn "$(awk -v a="$r0" -v b="$r1" -v n="$held" 'BEGIN{printf "%.1f", (b-a)/n}')"
      else rec idle "$s" "$IDLE" "$rep" failed 1; fi
      if [ -n "${IDLEP[1]:-}" ]; then eval "exec ${IDLEP[1]}>&-"; fi; wait "${IDLEP_PID:-}" 2>/dev/null || true
      stop "$s"
    done
  done
fi

python3 "$HERE/growth/summarize.py" "$RAW" > "$OUT/summary.md"
if command -v gnuplot >/dev/null; then
  python3 "$HERE/growth/summarize.py" "$RAW" --plot "$OUT" >> "$LOG" 2>&1 || echo "plots failed (see $LOG)" >&2
fi
cat "$OUT/summary.md"
echo "results in $OUT"
