#!/usr/bin/env bash
# Start/stop Debian's nfs-ganesha (VFS FSAL, NFSv3 only, TCP only) on loopback,
# on explicit ports, without rpcbind (LD_PRELOAD shim, see ../shim/).
#
#   bench/ganesha.sh start [--export DIR] [--nfsport N] [--mountport M] [--state DIR] [--nice N]
#   bench/ganesha.sh stop  [--state DIR]
#   bench/ganesha.sh pid   [--state DIR]
#
# Defaults: export /var/tmp/bench-export, NFS 21049, MOUNT 21048,
# state (config, log, pid) in /var/tmp/nfs-bench/ganesha.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}; shift || true
EXPORT=/var/tmp/bench-export; NFSPORT=21049; MOUNTPORT=21048
STATE=/var/tmp/nfs-bench/ganesha; NICE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --export) EXPORT=$2; shift 2;;
    --nfsport) NFSPORT=$2; shift 2;;
    --mountport) MOUNTPORT=$2; shift 2;;
    --state) STATE=$2; shift 2;;
    --nice) NICE=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
PIDFILE=$STATE/ganesha.pid

running() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case "$cmd" in
start)
  command -v ganesha.nfsd >/dev/null || { echo "apt-get install nfs-ganesha nfs-ganesha-vfs" >&2; exit 1; }
  if running; then echo "ganesha already running, pid $(cat "$PIDFILE")" >&2; exit 1; fi
  make -s -C "$HERE/shim" >/dev/null
  mkdir -p "$STATE" "$EXPORT"
  cat > "$STATE/ganesha.conf" <<EOF
NFS_CORE_PARAM {
    Protocols = 3;
    NFS_Port = $NFSPORT;
    MNT_Port = $MOUNTPORT;
    Bind_Addr = 127.0.0.1;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
    Enable_NFSACL = false;
}
NFSV4 { Graceless = true; }
EXPORT {
    Export_Id = 1;
    Path = $EXPORT;
    Pseudo = /bench;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    Protocols = 3;
    Transports = TCP;
    FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
EOF
  rm -f "$PIDFILE"
  # -F: foreground (we background it ourselves so $! is the daemon's pid)
  LD_PRELOAD="$HERE/shim/norpcbind.so" setsid nice -n "$NICE" ganesha.nfsd -F -f "$STATE/ganesha.conf" \
      -L "$STATE/ganesha.log" -p "$PIDFILE" -N NIV_EVENT > "$STATE/stdout.log" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$PIDFILE"
  for _ in $(seq 50); do
    if ss -ltn "sport = :$NFSPORT" | grep -q LISTEN && ss -ltn "sport = :$MOUNTPORT" | grep -q LISTEN; then
      echo "$pid"; exit 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "ganesha failed to start; see $STATE/ganesha.log" >&2; tail -5 "$STATE/ganesha.log" >&2; exit 1
  ;;
stop)
  if running; then
    pid=$(cat "$PIDFILE"); kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped $pid"
  else
    echo "not running"
  fi
  rm -f "$PIDFILE"
  ;;
pid)
  running && cat "$PIDFILE" || { echo "not running" >&2; exit 1; }
  ;;
*) sed -n 2,10p "$0"; exit 2;;
esac
