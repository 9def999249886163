#!/usr/bin/env bash
# Generic NFSv3 benchmark harness (client: libnfs via bench/client/nfsbench).
# bench/run.sh drives it for volnfs vs nfs-ganesha; use it directly for other targets.
#
# One target:
#   bench/harness.sh --host 127.0.0.1 --nfsport 21049 --mountport 21048 \
#                --export /var/tmp/bench-export [--label ganesha] [--server-pid PID]
# Several targets, interleaved A/B/A/B per repetition (order alternates):
#   bench/harness.sh --target label=ganesha,nfsport=21049,mountport=21048,export=/var/tmp/bench-export,pid=123 \
#                --target label=ours,nfsport=21149,mountport=21148,export=/srv/x,pid=456
#   (target keys: label host nfsport mountport export pid; host defaults to 127.0.0.1)
# The local row (no server: the same operations as system calls on a directory, by
# bench/client/localbench; null tests are skipped for it):
#   --target label=local,local=/var/tmp/volnfs-bench/local-export[,sync=1]
#   (sync=1: the metadata test fsyncs the directory after each create and remove)
#
# Options:
#   --reps N          repetitions per test and target (default 5)
#   --tests LIST      comma list (default: all of seqwrite,seqread,randread1,randread16,
#                     randwrite1,randwrite16,meta1,meta16,null1,null16)
#   --size SIZE       sequential file size (default 1G); bs 1M, queue depth --seq-qd (default 8)
#   --rand-secs S     duration of each random-I/O and NULL run (default 10)
#   --meta-files N    files per metadata run (default 10000)
#   --meta-fsize SIZE bytes written into each metadata file (default 0: empty files;
#                     >0 adds a WRITE3 + COMMIT3 per file to the create phase)
#   --warmup N        N unrecorded rounds of every test and target first (default 0)
#   --quiet-wait S    before each run wait up to S seconds for the box to be >= 85% idle
#                     for 2 consecutive seconds (1 when S is 1; default 5; 0 = do not wait)
#   --nice N          run the client at nice N and renice every thread of each target's
#                     server pid to N (default -10; same for all targets; 0 = leave alone).
#                     Shields the measurement from other work on the shared box.
#   --spin            run one SCHED_IDLE busy loop per CPU during the benchmark so the
#                     vCPUs never halt. On this VM (haltpoll, guest_halt_poll_ns=0) an idle
#                     vCPU's wake-up latency makes queue-depth-1 results depend on whether
#                     neighbours happen to keep the box busy (NULL qd1 on an idle box:
#                     ~12k calls/s plain vs ~20k with --spin). SCHED_IDLE yields at once to
#                     any normal task. Off by default (the baseline was taken without it).
#   --colocate CPU    run the client and every thread of the target's server on CPU only
#                     (taskset; the server is unpinned again after each run). Takes out
#                     the cross-CPU wake-up of a halted vCPU that every queue-depth-1 round
#                     trip pays twice on this VM (~25 us each), so what is left is the two
#                     processes' own path: shows the servers' difference, not a deployment.
#   --clients N       N client processes at once per run, each its own connection (default 1:
#                     one container; N: N containers on one volume). Random and NULL tests
#                     share the file; each metadata client gets its own directory. The
#                     metric is all clients' operations over the longest client's time,
#                     p50 the median of the clients' p50s, p99 the largest p99, client
#                     CPU the sum, `fair` the slowest client's rate over the fastest's.
#                     Not for seqwrite/seqread (one file, one writer).
#   --url-args STR    extra libnfs URL arguments, e.g. "auto-traverse-mounts=0"
#   --run-timeout S   kill a single nfsbench run after S seconds (default 300 + 3 x rand-secs)
#   --out DIR         results directory (default bench/results/YYYYmmdd-HHMMSS)
#   --keep            keep the data files on the servers afterwards
#
# Output: DIR/raw.csv (one row per run), DIR/summary.md (min/median/max per test
# and target, plus server/client/other CPU), DIR/log.txt (nfsbench output).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
NFSBENCH=$HERE/client/nfsbench
LOCALBENCH=$HERE/client/localbench

REPS=5; SIZE=1G; SEQ_QD=8; RAND_SECS=10; META_FILES=10000; META_FSIZE=0; WARMUP=0; QUIET_WAIT=5; KEEP=0; NICE=-10; URL_ARGS=""; RUN_TIMEOUT=""; SPIN=0; COLOCATE=""; CLIENTS=1
TESTS=seqwrite,seqread,randread1,randread16,randwrite1,randwrite16,meta1,meta16,null1,null16
OUT=""
TARGETS=()
cur_host=127.0.0.1; cur_nfs=""; cur_mnt=""; cur_exp=""; cur_label=""; cur_pid=""
flush_simple() {
  if [ -n "$cur_nfs$cur_mnt$cur_exp" ]; then
    [ -n "$cur_nfs" ] && [ -n "$cur_mnt" ] && [ -n "$cur_exp" ] || { echo "need --nfsport, --mountport and --export" >&2; exit 2; }
    TARGETS+=("label=${cur_label:-server},host=$cur_host,nfsport=$cur_nfs,mountport=$cur_mnt,export=$cur_exp,pid=$cur_pid")
  fi
  cur_host=127.0.0.1; cur_nfs=""; cur_mnt=""; cur_exp=""; cur_label=""; cur_pid=""
}
while [ $# -gt 0 ]; do
  case "$1" in
    --host) cur_host=$2; shift 2;;
    --nfsport) cur_nfs=$2; shift 2;;
    --mountport) cur_mnt=$2; shift 2;;
    --export) cur_exp=$2; shift 2;;
    --label) cur_label=$2; shift 2;;
    --server-pid) cur_pid=$2; shift 2;;
    --target) TARGETS+=("$2"); shift 2;;
    --reps) REPS=$2; shift 2;;
    --tests) TESTS=$2; shift 2;;
    --size) SIZE=$2; shift 2;;
    --seq-qd) SEQ_QD=$2; shift 2;;
    --rand-secs) RAND_SECS=$2; shift 2;;
    --meta-files) META_FILES=$2; shift 2;;
    --meta-fsize) META_FSIZE=$2; shift 2;;
    --warmup) WARMUP=$2; shift 2;;
    --quiet-wait) QUIET_WAIT=$2; shift 2;;
    --out) OUT=$2; shift 2;;
    --keep) KEEP=1; shift;;
    --nice) NICE=$2; shift 2;;
    --url-args) URL_ARGS=$2; shift 2;;
    --run-timeout) RUN_TIMEOUT=$2; shift 2;;
    --spin) SPIN=1; shift;;
    --colocate) COLOCATE=$2; shift 2;;
    --clients) CLIENTS=$2; shift 2;;
    -h|--help) sed -n "2,/^set -euo/{/^#/p}" "$0"; exit 0;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
flush_simple
[ ${#TARGETS[@]} -gt 0 ] || { sed -n "2,/^set -euo/{/^#/p}" "$0"; exit 2; }
[ -x "$NFSBENCH" ] && [ -x "$LOCALBENCH" ] || make -s -C "$HERE/client"
OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
RUN_TIMEOUT=${RUN_TIMEOUT:-$((300 + 3 * ${RAND_SECS%.*}))}
mkdir -p "$OUT"
RAW=$OUT/raw.csv; LOG=$OUT/log.txt
echo "label,test,rep,metric,value,unit,secs,server_cpu_s,client_cpu_s,other_cpu_s,extra" > "$RAW"
: > "$LOG"

kv() { # kv KEY "k=v,k=v"
  local IFS=,; for f in $2; do [ "${f%%=*}" = "$1" ] && { echo "${f#*=}"; return; }; done; echo ""; }
field() { # field KEY "RESULT k=v k=v"
  local f; for f in $2; do [ "${f%%=*}" = "$1" ] && { echo "${f#*=}"; return; }; done; echo ""; }
proc_cpu() { # utime+stime of all threads of PID, in clock ticks
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || { echo 0; return; }
  awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
sys_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
sys_sirq() { awk '/^cpu /{print $7+$8; exit}' /proc/stat; }
sys_idle() { awk '/^cpu /{print $5+$6; exit}' /proc/stat; }
HZ=$(getconf CLK_TCK); NCPU=$(nproc)

wait_quiet() {
  [ "$QUIET_WAIT" -gt 0 ] || return 0
  # two quiet seconds in a row, or one when only one second is allowed
  local deadline=$(( $(date +%s) + QUIET_WAIT )) good=0 need=$(( QUIET_WAIT >= 2 ? 2 : 1 )) b0 i0 b1 i1 pct
  # at least one look, even when the second turns over just after `deadline` is set
  while :; do
    b0=$(sys_busy); i0=$(sys_idle); sleep 1; b1=$(sys_busy); i1=$(sys_idle)
    pct=$(( 100 * (i1 - i0) / ( (b1 - b0) + (i1 - i0) + 1 ) ))
    if [ "$pct" -ge 85 ]; then good=$((good + 1)); [ $good -ge $need ] && return 0; else good=0; fi
    [ "$(date +%s)" -lt "$deadline" ] || break
  done
  echo "  (box not quiet after ${QUIET_WAIT}s; running anyway, idle ${pct}%)" | tee -a "$LOG" >&2
}

# test name -> nfsbench arguments, metric, unit
test_args() {
  local t=$1 lab=$2
  local f="-f nfsbench-$lab.dat"
  case "$t" in
    seqwrite)    echo "seqwrite $f -s $SIZE -b 1M -q $SEQ_QD|MBps|MB/s";;
    seqread)     echo "seqread $f -s $SIZE -b 1M -q $SEQ_QD|MBps|MB/s";;
    randread1)   echo "randread $f -s $SIZE -b 4K -q 1 -t $RAND_SECS|iops|IOPS";;
    randread16)  echo "randread $f -s $SIZE -b 4K -q 16 -t $RAND_SECS|iops|IOPS";;
    randwrite1)  echo "randwrite $f -s $SIZE -b 4K -q 1 -t $RAND_SECS|iops|IOPS";;
    randwrite16) echo "randwrite $f -s $SIZE -b 4K -q 16 -t $RAND_SECS|iops|IOPS";;
    meta1)       echo "meta -d nfsbench-meta-$lab -n $META_FILES -z $META_FSIZE -q 1|ops_per_s|ops/s";;
    meta16)      echo "meta -d nfsbench-meta-$lab -n $META_FILES -z $META_FSIZE -q 16|ops_per_s|ops/s";;
    null1)       echo "null -q 1 -t $RAND_SECS|iops|calls/s";;
    null16)      echo "null -q 16 -t $RAND_SECS|iops|calls/s";;
    *) echo "unknown test $t" >&2; exit 2;;
  esac
}

{
  echo "# nfs-bench run $(date -Is) on $(hostname), $(nproc) cpus, kernel $(uname -r)"
  echo "# libnfs $(dpkg-query -W -f '${Version}' libnfs13 2>/dev/null || echo '?')"
  echo "# load before start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# reps=$REPS warmup=$WARMUP size=$SIZE seq_qd=$SEQ_QD rand_secs=$RAND_SECS meta_files=$META_FILES meta_fsize=$META_FSIZE tests=$TESTS"
  for t in "${TARGETS[@]}"; do echo "# target $t"; done
} | tee -a "$LOG"

renice_server() { # every thread of PID to $NICE
  local t
  [ -n "$1" ] && [ -d "/proc/$1/task" ] || return 0
  for t in /proc/"$1"/task/*; do renice -n "$NICE" -p "${t##*/}" >/dev/null 2>&1 || true; done
}
if [ "$NICE" != 0 ]; then
  for t in "${TARGETS[@]}"; do renice_server "$(kv pid "$t")"; done
  echo "# client at nice $NICE; server threads reniced to $NICE" | tee -a "$LOG"
fi

SPINNERS=()
spin_cpu() { local p t=0; for p in "${SPINNERS[@]}"; do t=$((t + $(proc_cpu "$p"))); done; echo "$t"; }
stop_spinners() { local p; for p in "${SPINNERS[@]}"; do kill "$p" 2>/dev/null || true; done; SPINNERS=(); }
trap stop_spinners EXIT
if [ "$SPIN" = 1 ]; then
  for _ in $(seq "$NCPU"); do
    chrt --idle 0 nice -n 19 sh -c 'while :; do :; done' &
    SPINNERS+=($!)
  done
  echo "# $NCPU SCHED_IDLE spinners running (pids ${SPINNERS[*]}); their CPU is excluded from 'other'" | tee -a "$LOG"
fi

PIN=()
pin_server() { # pin_server PID CPULIST: every thread of PID (new ones inherit it)
  [ -n "$1" ] && [ -d "/proc/$1" ] || return 0
  taskset -a -p -c "$2" "$1" >/dev/null ||
    { echo "FAILED: could not pin server $1 to CPU $2 (taskset)" | tee -a "$LOG" >&2; exit 1; }
}
if [ -n "$COLOCATE" ]; then
  case "$COLOCATE" in *[!0-9]*|"") echo "--colocate: one CPU number, got '$COLOCATE'" >&2; exit 2;; esac
  [ "$COLOCATE" -lt "$NCPU" ] || { echo "--colocate $COLOCATE: this box has CPUs 0-$((NCPU - 1))" >&2; exit 2; }
  PIN=(taskset -c "$COLOCATE")
  echo "# client and server of each run pinned to CPU $COLOCATE (--colocate)" | tee -a "$LOG"
fi

IFS=, read -r -a TLIST <<< "$TESTS"
case "$CLIENTS" in *[!0-9]*|""|0) echo "--clients: a number >= 1, got '$CLIENTS'" >&2; exit 2;; esac
if [ "$CLIENTS" -gt 1 ]; then
  for test in "${TLIST[@]}"; do
    case "$test" in seq*) echo "--clients $CLIENTS: $test is one writer of one file; leave it out of --tests" >&2; exit 2;; esac
  done
  echo "# $CLIENTS clients at once per run (--clients)" | tee -a "$LOG"
fi

# run_clients URL ARGS...: one run of $bench by $CLIENTS processes at once; prints one
# RESULT line (see --clients), fails if any client fails.
bench_once() { timeout -k 5 "$RUN_TIMEOUT" "${PIN[@]}" nice -n "$NICE" "$bench" "$@"; }
run_clients() {
  local url=$1 i p rc=0 dir prev a; shift
  if [ "$CLIENTS" -eq 1 ]; then bench_once "$url" "$@"; return; fi
  local pids=() cargs
  dir=$(mktemp -d)
  for i in $(seq "$CLIENTS"); do
    cargs=(); prev=""
    for a in "$@"; do   # a directory of its own per client
      if [ "$prev" = -d ]; then cargs+=("$a-c$i"); else cargs+=("$a"); fi
      prev=$a
    done
    bench_once "$url" "${cargs[@]}" > "$dir/$i" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  [ $rc -eq 0 ] && python3 - "$metric" "$dir"/* <<'PY' || rc=$?
import statistics, sys
metric, runs = sys.argv[1], []
for path in sys.argv[2:]:
    line = [l for l in open(path) if l.startswith("RESULT ")][-1]
    runs.append(dict(f.split("=", 1) for f in line.split()[1:] if "=" in f))
secs = max(float(r["secs"]) for r in runs)
ops = sum(float(r[metric]) * float(r["secs"]) for r in runs)
out = {"mode": runs[0]["mode"], "clients": len(runs), "secs": "%.4f" % secs,
       metric: "%.0f" % (ops / secs),
       "client_cpu_s": "%.3f" % sum(float(r.get("client_cpu_s", 0)) for r in runs)}
# How evenly the server shared itself: the slowest client's rate over the fastest's.
rates = [float(r[metric]) for r in runs]
out["fair"] = "%.2f" % (min(rates) / max(rates) if max(rates) > 0 else 1.0)
if all("lat_p50_us" in r for r in runs):
    out["lat_p50_us"] = "%.1f" % statistics.median(float(r["lat_p50_us"]) for r in runs)
    out["lat_p99_us"] = "%.1f" % max(float(r["lat_p99_us"]) for r in runs)
print("RESULT " + " ".join("%s=%s" % kv for kv in out.items()))
PY
  rm -rf "$dir"
  return $rc
}
NT=${#TARGETS[@]}
# seqread and the random tests read or overwrite the file seqwrite makes: when no
# seqwrite runs before them, make it once per target, untimed.
NEED_FILE=0
for test in "${TLIST[@]}"; do
  case "$test" in seqwrite) break;; seqread|rand*) NEED_FILE=1; break;; esac
done
if [ "$NEED_FILE" = 1 ]; then
  for tgt in "${TARGETS[@]}"; do
    lab=$(kv label "$tgt"); host=$(kv host "$tgt"); host=${host:-127.0.0.1}
    url="nfs://$host$(kv export "$tgt")?nfsport=$(kv nfsport "$tgt")&mountport=$(kv mountport "$tgt")${URL_ARGS:+&$URL_ARGS}"
    bench=$NFSBENCH
    if [ -n "$(kv local "$tgt")" ]; then bench=$LOCALBENCH url=$(kv local "$tgt"); fi
    IFS='|' read -r args _ _ <<< "$(test_args seqwrite "$lab")"
    echo "# $lab: writing the $SIZE test file (untimed; no seqwrite in --tests)" | tee -a "$LOG"
    # shellcheck disable=SC2086
    timeout -k 5 "$RUN_TIMEOUT" "$bench" "$url" $args >>"$LOG" 2>&1 ||
      { echo "FAILED: $lab: could not write the test file ($bench '$url' $args)" | tee -a "$LOG" >&2; exit 1; }
  done
fi
for test in "${TLIST[@]}"; do
  for rep in $(seq $((1 - WARMUP)) "$REPS"); do
    for k in $(seq 0 $((NT - 1))); do
      # alternate the order each repetition: A B, B A, A B, ...
      if [ $(( (rep + 2 * WARMUP) % 2 )) -eq 1 ]; then idx=$k; else idx=$((NT - 1 - k)); fi
      tgt=${TARGETS[$idx]}
      lab=$(kv label "$tgt"); lab=${lab:-t$idx}
      host=$(kv host "$tgt"); host=${host:-127.0.0.1}
      url="nfs://$host$(kv export "$tgt")?nfsport=$(kv nfsport "$tgt")&mountport=$(kv mountport "$tgt")${URL_ARGS:+&$URL_ARGS}"
      spid=$(kv pid "$tgt")
      IFS='|' read -r args metric unit <<< "$(test_args "$test" "$lab")"
      bench=$NFSBENCH
      if [ -n "$(kv local "$tgt")" ]; then   # the local row: system calls, no server
        case "$test" in null*) continue;; esac
        bench=$LOCALBENCH url=$(kv local "$tgt")
        [ "$(kv sync "$tgt")" = 1 ] && [ "${test#meta}" != "$test" ] && args+=" -S"
      fi
      wait_quiet
      [ "$NICE" != 0 ] && renice_server "$spid"   # threads may have been created since
      [ -n "$COLOCATE" ] && pin_server "$spid" "$COLOCATE"
      s0=$(proc_cpu "$spid"); b0=$(sys_busy); q0=$(sys_sirq); p0=$(spin_cpu)
      # shellcheck disable=SC2086
      rc=0; res=$(run_clients "$url" $args 2>>"$LOG") || rc=$?
      [ -n "$COLOCATE" ] && pin_server "$spid" "0-$((NCPU - 1))"
      if [ $rc -ne 0 ]; then
        echo "FAILED: $lab $test rep $rep ($bench '$url' $args)" | tee -a "$LOG" >&2
        echo "$lab,$test,$rep,$metric,,$unit,,,,,FAILED" >> "$RAW"
        continue
      fi
      s1=$(proc_cpu "$spid"); b1=$(sys_busy); q1=$(sys_sirq); p1=$(spin_cpu)
      echo "$lab $test rep=$rep $res" >> "$LOG"
      if [ "$rep" -le 0 ]; then echo "$lab $test warm-up: $(field "$metric" "$res") $unit"; continue; fi
      val=$(field "$metric" "$res"); secs=$(field secs "$res"); ccpu=$(field client_cpu_s "$res")
      scpu=$(awk -v a="$s0" -v b="$s1" -v hz="$HZ" 'BEGIN{printf "%.3f", (b-a)/hz}')
      ocpu=$(awk -v a="$b0" -v b="$b1" -v hz="$HZ" -v s="$scpu" -v c="$ccpu" -v p0="$p0" -v p1="$p1" 'BEGIN{o=(b-a)/hz-s-c-(p1-p0)/hz; if(o<0)o=0; printf "%.3f", o}')
      extra="sirq_s=$(awk -v a="$q0" -v b="$q1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}');spin_s=$(awk -v a="$p0" -v b="$p1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}');"
      case "$test" in
        meta*) extra+="create=$(field create_per_s "$res");stat=$(field stat_per_s "$res");remove=$(field remove_per_s "$res")";;
        rand*|null*) extra+="p50_us=$(field lat_p50_us "$res");p99_us=$(field lat_p99_us "$res")";;
        seq*) extra+="commit_s=$(field commit_secs "$res")";;
      esac
      fair=$(field fair "$res")
      [ -n "$fair" ] && extra+=";fair=$fair"
      [ -z "$spid" ] && scpu=""
      echo "$lab,$test,$rep,$metric,$val,$unit,$secs,$scpu,$ccpu,$ocpu,$extra" >> "$RAW"
      printf '%-10s %-12s rep %d: %10s %-7s (%.1fs, server cpu %ss, client cpu %ss, other cpu %ss%s)\n' \
        "$lab" "$test" "$rep" "$val" "$unit" "$secs" "${scpu:-?}" "$ccpu" "$ocpu" "${fair:+, slowest/fastest client $fair}"
    done
  done
done

if [ "$KEEP" -eq 0 ]; then
  for tgt in "${TARGETS[@]}"; do
    lab=$(kv label "$tgt"); host=$(kv host "$tgt"); host=${host:-127.0.0.1}
    if [ -n "$(kv local "$tgt")" ]; then rm -f "$(kv local "$tgt")/nfsbench-$lab.dat"; continue; fi
    url="nfs://$host$(kv export "$tgt")?nfsport=$(kv nfsport "$tgt")&mountport=$(kv mountport "$tgt")${URL_ARGS:+&$URL_ARGS}"
    timeout 60 "$NFSBENCH" "$url" rm -f "nfsbench-$lab.dat" >/dev/null 2>&1 || true
  done
fi

ORDER=""; for t in "${TARGETS[@]}"; do ORDER+="${ORDER:+,}$(kv label "$t")"; done
python3 "$HERE/summarize.py" "$RAW" "$ORDER" > "$OUT/summary.md"
cat "$OUT/summary.md"
echo "results in $OUT"
