#!/usr/bin/env bash
# Start or stop this scenario's moto S3 server on a loopback port.
#   moto.sh start PORT STATE_DIR    (prints "started" or "running")
#   moto.sh stop STATE_DIR          (stops only the process whose pid it recorded)
set -o errexit -o nounset -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
moto_server="$here/../../.venv/bin/moto_server"
case "$1" in
  start)
    port=$2 state=$3
    mkdir -p "$state"
    if [[ -s $state/moto.pid ]] && kill -0 "$(cat "$state/moto.pid")" 2>/dev/null; then
      echo running; exit 0
    fi
    setsid "$moto_server" -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 </dev/null &
    echo $! >"$state/moto.pid"
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo started; exit 0; fi
      sleep 0.2
    done
    echo "moto did not listen on 127.0.0.1:$port; see $state/moto.log" >&2
    exit 1
    ;;
  stop)
    state=$2
    if [[ -s $state/moto.pid ]]; then
      pid=$(cat "$state/moto.pid")
      if kill -0 "$pid" 2>/dev/null; then kill "$pid"; echo stopped; fi
      rm -f "$state/moto.pid"
    fi
    ;;
  *) echo "usage: moto.sh start PORT STATE_DIR | stop STATE_DIR" >&2; exit 2 ;;
esac
