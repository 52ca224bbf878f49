#!/usr/bin/env bash
# plugin-env.sh: a private Docker Engine, a loopback registry and fixture managed plugins, for
# plugctl's integration tests.
#
#   bash test/env/plugin-env.sh install|up|down|status|reset|start-registry|stop-registry|restart-dockerd|stop-dockerd|start-dockerd|build-bench|busybox-image|clean
#   eval "$(bash test/env/plugin-env.sh up)"       # `up` and `status` print `export K=V` lines on stdout
#   source test/env/plugin-env.sh; pe_up; ...; pe_down
#
# Settings (environment): PE_DIR (default /tmp/plugctl-env: state, logs, caches, registry storage),
# PE_REG_PORT (default 5000), PE_BENCH=1 (also push test/bench-1..20 at `up`), PE_ENGINE_LABELS
# (k=v,... written to the daemon's daemon.json "labels" when dockerd starts, e.g. with restart-dockerd).
#
# stop-dockerd stops only dockerd (by its PID), keeping its data root, so a test can read the
# plugins directory dockerd wrote ($PE_DIR/root/plugins); start-dockerd starts it again on that root.
#
# Needs root. Listens only on 127.0.0.1 and a private unix socket. Only one dockerd may run per
# machine (managed plugins' sockets live in the fixed /run/docker/plugins), so `up` refuses to start
# when a dockerd that is not ours is running. Every process is started and stopped by its PID.
#
# Fixtures pushed to 127.0.0.1:$PE_REG_PORT (see pe_fixture_config for the exact configs):
#   test/vol:1.0, test/vol:2.0  volume driver; privileges: network=host; env GREETING, DEBUG,
#                               FAIL_AT_START settable; args settable (default --label=<version>)
#   test/priv:1.0               privileges: network=host, mount=/tmp, device=/dev/null,
#                               capabilities=CAP_SYS_ADMIN; settable mount `state`, device `null`
#   test/bad:1.0                no privileges; exits 1 at start (env FAIL_AT_START=1, settable)
#   test/bench-N:1.0, N=1..20   no privileges (only with PE_BENCH=1 or `build-bench`)

PE_DIR=${PE_DIR:-/tmp/plugctl-env}
PE_REG_PORT=${PE_REG_PORT:-5000}
PE_REG=127.0.0.1:$PE_REG_PORT
PE_SOCK=$PE_DIR/docker.sock
PE_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PE_DIR PE_REG_PORT PE_REG PE_SOCK
export DOCKER_HOST=unix://$PE_SOCK

# The commands (pe_install, pe_up, pe_down, pe_status, pe_reset, pe_start_registry, ...) run in a
# subshell with strict mode, so sourcing this file never changes the caller's shell options and a
# failure inside one step cannot leave the caller half-configured. `up` starts dockerd, when it is
# not already running, from an empty data root; fixtures persist in the registry storage.

pe_log() { printf '[plugin-env %s] %s\n' "$(date +%T.%3N)" "$*" >&2; }
pe_die() { pe_log "error: $*"; exit 1; }

# The CLI shipped with the daemon's package when there is one: its API matches dockerd exactly.
pe_docker_bin() {
  if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker; fi
}

# The docker CLI aimed at our daemon, with a private (empty) client config so a credential helper
# configured for the user is never consulted.
pe_docker() {
  DOCKER_HOST=unix://$PE_SOCK DOCKER_CONFIG=$PE_DIR/docker-config "$(pe_docker_bin)" "$@"
}

pe_pkg_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

pe_install() (
  set -euo pipefail
  local missing=() p
  for p in docker.io docker-registry busybox-static runc gcc libc6-dev curl systemd; do
    pe_pkg_installed "$p" || missing+=("$p")
  done
  # the shells whose completion scripts test/integration/completion-shells.test.ts checks
  for p in zsh fish; do
    pe_pkg_installed "$p" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    pe_log "install: all packages present"
    return 0
  fi
  [ "$(id -u)" = 0 ] || pe_die "install needs root to apt-get install: ${missing[*]}"
  pe_log "install: apt-get install ${missing[*]}"
  # Package scripts must not start the system dockerd or registry (they would take /run/docker/plugins
  # and port 5000): policy-rc.d exit 101 forbids it, and is removed again if we created it.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=300 "${missing[@]}"
  } >"${TMPDIR:-/tmp}/plugin-env-apt.log" 2>&1 || rc=$?
  [ $made_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
  if [ $rc != 0 ]; then
    tail -20 "${TMPDIR:-/tmp}/plugin-env-apt.log" >&2
    pe_die "apt-get install failed (exit $rc); full log in ${TMPDIR:-/tmp}/plugin-env-apt.log"
  fi
  pe_log "install: done"
)

# pid_alive PIDFILE COMM: prints the PID when the file names a live process called COMM.
pe_pid_alive() {
  local f=$1 comm=$2 p
  [ -f "$f" ] || return 1
  p=$(cat "$f" 2>/dev/null) || return 1
  [ -n "$p" ] && [ -d "/proc/$p" ] || return 1
  [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$comm" ] || return 1
  # a zombie is not alive
  [ "$(awk '/^State:/ {print $2}' "/proc/$p/status" 2>/dev/null)" != Z ] || return 1
  echo "$p"
}

pe_dockerd_pid() { pe_pid_alive "$PE_DIR/dockerd.launch.pid" dockerd; }
pe_registry_pid() { pe_pid_alive "$PE_DIR/registry.pid" docker-registry; }

pe_dockerd_ok() { curl -fsS --max-time 2 --unix-socket "$PE_SOCK" http://localhost/_ping >/dev/null 2>&1; }
pe_registry_ok() { curl -fsS --max-time 2 "http://$PE_REG/v2/" >/dev/null 2>&1; }
pe_port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$PE_REG_PORT") 2>/dev/null; }

# Starts "$@" detached in its own session with output to LOG, and writes its PID to PIDFILE. The
# child writes its own PID and then execs, so the PID is the program's even when setsid must fork.
pe_spawn() { # PIDFILE LOG CMD...
  local pidfile=$1 log=$2
  shift 2
  rm -f "$pidfile"
  # Descriptors above 2 are closed: a daemon must not inherit the caller's pipes or locks (a test run
  # under `flock` would otherwise leave the lock held by dockerd for as long as dockerd lives).
  # shellcheck disable=SC2016  # expanded by the inner bash
  setsid -f bash -c 'echo $$ >"$0"
    for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && exec {fd}>&-; done
    exec "$@"' "$pidfile" "$@" >"$log" 2>&1 </dev/null
  local _
  for _ in $(seq 1 50); do
    [ -s "$pidfile" ] && return 0
    sleep 0.02
  done
  pe_die "could not start $1"
}

# Waits until CHECK succeeds; fails early, with the log's tail, when the process died.
pe_wait() { # WHAT PIDFN LOG TIMEOUT_S CHECK...
  local what=$1 pidfn=$2 log=$3 timeout=$4 i
  shift 4
  for ((i = 0; i < timeout * 20; i++)); do
    "$@" && return 0
    if ! $pidfn >/dev/null; then
      tail -20 "$log" >&2 || true
      pe_die "$what exited during start-up; log: $log"
    fi
    sleep 0.05
  done
  tail -20 "$log" >&2 || true
  pe_die "$what did not answer within ${timeout}s; log: $log"
}

# Stops the process in PIDFILE if it is COMM: TERM, wait up to TIMEOUT seconds, then KILL.
pe_stop_pid() { # PIDFILE COMM TIMEOUT_S
  local f=$1 comm=$2 timeout=$3 p i
  if p=$(pe_pid_alive "$f" "$comm"); then
    kill -TERM "$p" 2>/dev/null || true
    for ((i = 0; i < timeout * 20; i++)); do
      pe_pid_alive "$f" "$comm" >/dev/null || break
      sleep 0.05
    done
    if pe_pid_alive "$f" "$comm" >/dev/null; then
      pe_log "$comm ($p) ignored TERM for ${timeout}s: KILL"
      kill -KILL "$p" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do
        pe_pid_alive "$f" "$comm" >/dev/null || break
        sleep 0.05
      done
    fi
  fi
  rm -f "$f"
}

pe_start_registry() (
  set -euo pipefail
  mkdir -p "$PE_DIR/reg"
  if pe_registry_pid >/dev/null; then
    pe_wait registry pe_registry_pid "$PE_DIR/registry.log" 15 pe_registry_ok
    return 0
  fi
  if pe_port_taken; then
    pe_die "127.0.0.1:$PE_REG_PORT is already taken by a process that is not this environment's registry; stop it or set PE_REG_PORT"
  fi
  cat >"$PE_DIR/registry.yml" <<Y
version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage:
  filesystem: { rootdirectory: $PE_DIR/reg }
  delete: { enabled: true }
http: { addr: $PE_REG }
Y
  pe_spawn "$PE_DIR/registry.pid" "$PE_DIR/registry.log" docker-registry serve "$PE_DIR/registry.yml"
  pe_wait registry pe_registry_pid "$PE_DIR/registry.log" 15 pe_registry_ok
  pe_log "registry up on $PE_REG (pid $(cat "$PE_DIR/registry.pid"))"
)

pe_stop_registry() (
  set -euo pipefail
  pe_stop_pid "$PE_DIR/registry.pid" docker-registry 10
  pe_log "registry stopped"
)

# Unmounts whatever a killed dockerd left mounted below DIR, deepest first.
pe_unmount_under() {
  local dir=$1 m
  for m in $(awk -v d="$dir/" 'index($2, d) == 1 || $2 == substr(d, 1, length(d) - 1) {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || pe_log "could not unmount $m"
  done
}

pe_start_dockerd() (
  set -euo pipefail
  if pe_dockerd_pid >/dev/null; then
    pe_wait dockerd pe_dockerd_pid "$PE_DIR/dockerd.log" 30 pe_dockerd_ok
    return 0
  fi
  # a zombie dockerd (exited, not yet reaped by init) holds nothing and does not count, nor does
  # one that is gone by the time its status is read (a restart's old daemon finishing its exit)
  local foreign="" p state
  for p in $(pgrep -x dockerd || true); do
    state=$(awk '/^State:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
    [ -z "$state" ] || [ "$state" = Z ] || foreign="$foreign $p"
  done
  foreign=${foreign# }
  if [ -n "$foreign" ]; then
    pe_die "another dockerd is running (pid $foreign): $(tr '\0' ' ' </proc/"${foreign%% *}"/cmdline 2>/dev/null). Only one dockerd may run per machine because managed plugins share /run/docker/plugins; stop it first"
  fi
  # A fresh daemon starts from an empty data root: plugins or volumes left by a run that died would
  # be restored (enabled plugins started), and a volume whose plugin is gone stalls start-up for 15 s
  # while dockerd waits for its driver. Nothing there is worth keeping; fixtures live in the registry.
  # PE_KEEP_ROOT=1 (restart-dockerd) keeps it: a restart must find its plugins again.
  if [ "${PE_KEEP_ROOT:-0}" != 1 ]; then
    pe_unmount_under "$PE_DIR/root"
    pe_unmount_under "$PE_DIR/exec"
    rm -rf "$PE_DIR/root" "$PE_DIR/exec"
  fi
  mkdir -p "$PE_DIR/root" "$PE_DIR/exec" "$PE_DIR/docker-config"
  [ -f "$PE_DIR/docker-config/config.json" ] || echo '{}' >"$PE_DIR/docker-config/config.json"
  # A private daemon.json: the machine's /etc/docker/daemon.json must not change our daemon.
  # PE_ENGINE_LABELS=k=v,k2=v2 gives the engine labels (daemon.json "labels"), as an operator would.
  local labels="" l
  for l in ${PE_ENGINE_LABELS:+${PE_ENGINE_LABELS//,/ }}; do labels="$labels${labels:+,}\"$l\""; done
  echo "{\"labels\": [$labels]}" >"$PE_DIR/daemon.json"
  rm -f "$PE_DIR/dockerd.pid"
  pe_spawn "$PE_DIR/dockerd.launch.pid" "$PE_DIR/dockerd.log" \
    dockerd --config-file "$PE_DIR/daemon.json" --storage-driver=vfs \
    --iptables=false --ip-masq=false --bridge=none --userland-proxy=false \
    -H "unix://$PE_SOCK" --data-root "$PE_DIR/root" --exec-root "$PE_DIR/exec" \
    --pidfile "$PE_DIR/dockerd.pid"
  pe_wait dockerd pe_dockerd_pid "$PE_DIR/dockerd.log" 30 pe_dockerd_ok
  pe_log "dockerd $(pe_engine_version) up on $PE_SOCK (pid $(cat "$PE_DIR/dockerd.launch.pid"))"
)

pe_engine_version() {
  curl -fsS --max-time 5 --unix-socket "$PE_SOCK" http://localhost/version 2>/dev/null |
    sed -n 's/.*"Version":"\([^"]*\)".*"ApiVersion".*/\1/p' | head -1
}

# The static responder, compiled once per (source, compiler) and cached in $PE_DIR/cache.
pe_build_plugind() (
  set -euo pipefail
  local key out
  key=$({ cat "$PE_SRC/plugind.c"; gcc -dumpfullversion; } | sha256sum | cut -c1-16)
  out=$PE_DIR/cache/plugind-$key
  if [ ! -x "$out" ]; then
    mkdir -p "$PE_DIR/cache"
    gcc -static -Os -s -Wall -o "$out.tmp" "$PE_SRC/plugind.c"
    mv "$out.tmp" "$out"
    pe_log "built plugind ($key)"
  fi
  echo "$out"
)

# pe_fixture_config KIND LABEL: the plugin config.json of one fixture. KIND: vol|priv|bad|bench.
pe_fixture_config() {
  local kind=$1 label=$2
  local entry='"Entrypoint": ["/bin/plugind", "/run/docker/plugins/plugind.sock"],
  "WorkDir": "/",
  "Interface": { "Types": ["docker.volumedriver/1.0"], "Socket": "plugind.sock" },'
  case $kind in
    vol)
      cat <<J
{
  "Description": "plugctl test volume plugin $label",
  "Documentation": "https://example.invalid/plugctl/test/vol",
  $entry
  "Network": { "Type": "host" },
  "Env": [
    { "Name": "GREETING", "Description": "greeting printed at start", "Settable": ["value"], "Value": "hello" },
    { "Name": "DEBUG", "Description": "debug level", "Settable": ["value"], "Value": "0" },
    { "Name": "FAIL_AT_START", "Description": "1 makes the plugin exit at start", "Settable": ["value"], "Value": "0" }
  ],
  "Args": { "Name": "args", "Description": "extra arguments", "Settable": ["value"], "Value": ["--label=$label"] },
  "Linux": { "Capabilities": [] }
}
J
      ;;
    priv)
      cat <<J
{
  "Description": "plugctl test plugin asking for privileges $label",
  "Documentation": "https://example.invalid/plugctl/test/priv",
  $entry
  "Network": { "Type": "host" },
  "Env": [ { "Name": "DEBUG", "Description": "debug level", "Settable": ["value"], "Value": "0" } ],
  "Mounts": [
    { "Name": "state", "Description": "state directory", "Source": "/tmp", "Destination": "/state",
      "Type": "bind", "Options": ["rbind", "rw"], "Settable": ["source"] }
  ],
  "Linux": {
    "Capabilities": ["CAP_SYS_ADMIN"],
    "Devices": [ { "Name": "null", "Description": "a device", "Path": "/dev/null", "Settable": ["path"] } ]
  }
}
J
      ;;
    bad)
      cat <<J
{
  "Description": "plugctl test plugin that exits at start $label",
  "Documentation": "https://example.invalid/plugctl/test/bad",
  $entry
  "Env": [ { "Name": "FAIL_AT_START", "Description": "0 lets it start", "Settable": ["value"], "Value": "1" } ],
  "Linux": { "Capabilities": [] }
}
J
      ;;
    bench)
      cat <<J
{
  "Description": "plugctl benchmark plugin $label",
  "Documentation": "https://example.invalid/plugctl/test/bench",
  $entry
  "Env": [ { "Name": "DEBUG", "Description": "debug level", "Settable": ["value"], "Value": "0" } ],
  "Linux": { "Capabilities": [] }
}
J
      ;;
    *) pe_die "unknown fixture kind $kind" ;;
  esac
}

pe_main_fixtures() { printf '%s\n' "test/vol:1.0 vol" "test/vol:2.0 vol" "test/priv:1.0 priv" "test/bad:1.0 bad"; }
pe_bench_fixtures() { local n; for n in $(seq 1 20); do echo "test/bench-$n:1.0 bench"; done; }

pe_manifest_exists() { # REPO:TAG
  local ref=$1
  curl -fsS --max-time 5 -o /dev/null \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$PE_REG/v2/${ref%%:*}/manifests/${ref##*:}" 2>/dev/null
}

# pe_push_fixtures STAMPNAME BUSYBOX(0|1) < "ref kind" lines. Builds each plugin from one shared
# context (a single rootfs copy whose /VERSION is rewritten per fixture, so every layer is distinct),
# pushes them four at a time and removes them locally. Skipped when the stamp (plugind, configs,
# busybox) matches and every manifest is in the registry, so a repeated `up` costs only the checks.
pe_push_fixtures() (
  set -euo pipefail
  local stampname=$1 busybox=$2 list plugind stamp ref kind ctx all=1
  list=$(cat)
  plugind=$(pe_build_plugind)
  stamp=$({
    sha256sum "$plugind"
    [ "$busybox" = 0 ] || sha256sum /bin/busybox
    declare -f pe_fixture_config
    echo "$list"
  } | sha256sum | cut -c1-32)
  if [ "$(cat "$PE_DIR/$stampname.stamp" 2>/dev/null)" = "$stamp" ]; then
    while read -r ref kind; do pe_manifest_exists "$ref" || { all=0; break; }; done <<<"$list"
    if [ $all = 1 ]; then
      pe_log "fixtures ($stampname) already in the registry"
      return 0
    fi
  fi
  ctx=$PE_DIR/build/ctx
  rm -rf "$PE_DIR/build"
  mkdir -p "$ctx"/rootfs/{bin,run/docker/plugins,tmp,proc,dev,sys,etc,state,mnt,var/lib/plugind}
  cp "$plugind" "$ctx/rootfs/bin/plugind"
  if [ "$busybox" = 1 ]; then
    cp /bin/busybox "$ctx/rootfs/bin/busybox"
    ln -s busybox "$ctx/rootfs/bin/sh"
  fi
  touch "$ctx/rootfs/etc/hosts" "$ctx/rootfs/etc/resolv.conf"
  rm -f "$PE_DIR/$stampname.stamp"
  # leftovers of an interrupted build would make `plugin create` fail
  local existing
  existing=$(pe_docker plugin ls --format '{{.Name}}' 2>/dev/null || true)
  while read -r ref kind; do
    echo "$ref" >"$ctx/rootfs/VERSION"
    pe_fixture_config "$kind" "${ref##*:}" >"$ctx/config.json"
    if grep -qxF "$PE_REG/$ref" <<<"$existing"; then pe_docker plugin rm -f "$PE_REG/$ref" >/dev/null; fi
    pe_docker plugin create "$PE_REG/$ref" "$ctx" >/dev/null
  done <<<"$list"
  rm -rf "$PE_DIR/build"
  export -f pe_docker pe_docker_bin
  if ! echo "$list" | awk -v r="$PE_REG" '{print r "/" $1}' |
    xargs -P4 -I{} bash -c 'pe_docker plugin push "$1" >/dev/null 2>"$0/push-err.$$" && rm -f "$0/push-err.$$"' "$PE_DIR" {}; then
    cat "$PE_DIR"/push-err.* >&2 2>/dev/null || true
    rm -f "$PE_DIR"/push-err.*
    pe_die "pushing fixtures ($stampname) failed"
  fi
  while read -r ref kind; do pe_docker plugin rm -f "$PE_REG/$ref" >/dev/null; done <<<"$list"
  echo "$stamp" >"$PE_DIR/$stampname.stamp"
  pe_log "pushed fixtures ($stampname): $(echo "$list" | awk '{print $1}' | tr '\n' ' ')"
)

pe_build_bench() (
  set -euo pipefail
  pe_bench_fixtures | pe_push_fixtures bench 0
)

# The lines a caller evals. PE_STARTED=1 when this invocation started dockerd (so the caller that
# started it also tears it down; a caller that found it running only resets it).
pe_exports() {
  local started=${1:-0}
  cat <<E
export PE_DIR=$PE_DIR
export PE_REG=$PE_REG
export PE_SOCK=$PE_SOCK
export DOCKER_HOST=unix://$PE_SOCK
export PE_DOCKER=$(pe_docker_bin)
export PE_DOCKER_CONFIG=$PE_DIR/docker-config
export PE_ENGINE_VERSION=$(pe_engine_version)
export PE_STARTED=$started
E
}

pe_up() (
  set -euo pipefail
  [ "$(id -u)" = 0 ] || pe_die "the plugin environment needs root (dockerd, runc)"
  local t0=$SECONDS started=0
  pe_install
  mkdir -p "$PE_DIR"
  pe_dockerd_pid >/dev/null || started=1
  # both daemons start in parallel; each waits for its own readiness
  pe_start_registry &
  local reg_job=$!
  pe_start_dockerd
  wait "$reg_job" || pe_die "registry failed to start"
  pe_main_fixtures | pe_push_fixtures fixtures 1
  if [ "${PE_BENCH:-0}" = 1 ]; then pe_build_bench; fi
  pe_log "up in $((SECONDS - t0))s: DOCKER_HOST=unix://$PE_SOCK registry=$PE_REG"
  pe_exports "$started"
)

# Imports plugctl-test/busybox:1 (busybox-static as /bin/busybox, nothing else) into our dockerd when
# it is missing: an image for containers that use volumes or log drivers, without a registry pull.
pe_busybox_image() (
  set -euo pipefail
  pe_docker image inspect plugctl-test/busybox:1 >/dev/null 2>&1 && return 0
  local t
  t=$(mktemp -d)
  mkdir -p "$t/bin"
  cp /bin/busybox "$t/bin/busybox"
  tar -C "$t" -c . | pe_docker import - plugctl-test/busybox:1 >/dev/null
  rm -rf "$t"
  pe_log "imported plugctl-test/busybox:1"
)

# Removes every container, volume and plugin from our dockerd; leaves the daemons running. Caveat: dockerd lists
# (and so lets us remove) a plugin's volumes only while that plugin is enabled; a test that creates
# volumes must remove them itself before it disables the plugin for good.
pe_reset() (
  set -euo pipefail
  pe_dockerd_pid >/dev/null && pe_dockerd_ok || return 0
  local v p c
  for c in $(pe_docker ps -aq 2>/dev/null); do pe_docker rm -f "$c" >/dev/null 2>&1 || true; done
  for v in $(pe_docker volume ls -q 2>/dev/null); do pe_docker volume rm -f "$v" >/dev/null 2>&1 || true; done
  for p in $(pe_docker plugin ls -q --no-trunc 2>/dev/null); do
    pe_docker plugin rm -f "$p" >/dev/null 2>&1 || pe_log "could not remove plugin $p"
  done
)

pe_down() (
  set -uo pipefail
  local p
  if pe_dockerd_pid >/dev/null; then
    pe_reset || true
    pe_stop_pid "$PE_DIR/dockerd.launch.pid" dockerd 20
  fi
  rm -f "$PE_DIR/dockerd.launch.pid"
  # dockerd stops its managed containerd; if it was killed, stop the containerd and shims it left.
  pe_stop_pid "$PE_DIR/exec/containerd/containerd.pid" containerd 10
  # Each shim's children are the plugin processes; killing only the shim would orphan them.
  local c
  for p in $(pgrep -f "containerd-shim.* -address $PE_DIR/exec/containerd/containerd.sock" || true); do
    for c in $(pgrep -P "$p" || true); do kill -KILL "$c" 2>/dev/null || true; done
    kill -KILL "$p" 2>/dev/null || true
  done
  pe_stop_pid "$PE_DIR/registry.pid" docker-registry 10
  # What a killed dockerd leaves behind: mounts under its roots and per-plugin socket directories.
  if ! pe_dockerd_pid >/dev/null; then
    local id
    for id in $(ls "$PE_DIR/root/plugins" 2>/dev/null | grep -E '^[0-9a-f]{64}$' || true); do
      pe_unmount_under "/run/docker/plugins/$id"
      rm -rf "/run/docker/plugins/$id"
    done
    pe_unmount_under "$PE_DIR/root"
    pe_unmount_under "$PE_DIR/exec"
  fi
  pe_log "down"
)

# Stops dockerd by PID and starts it again on the same data root, as a host's daemon restart would.
pe_restart_dockerd() (
  set -euo pipefail
  pe_stop_pid "$PE_DIR/dockerd.launch.pid" dockerd 20
  rm -f "$PE_DIR/dockerd.launch.pid"
  PE_KEEP_ROOT=1 pe_start_dockerd
)

# Stops dockerd by PID, keeping its data root and plugins as they are (no reset first, unlike down).
pe_stop_dockerd() (
  set -euo pipefail
  pe_stop_pid "$PE_DIR/dockerd.launch.pid" dockerd 20
  rm -f "$PE_DIR/dockerd.launch.pid"
  pe_log "dockerd stopped; data root kept in $PE_DIR/root"
)

pe_status() (
  set -uo pipefail
  local d r
  d=$(pe_dockerd_pid) && pe_log "dockerd: running (pid $d)" || pe_log "dockerd: stopped"
  r=$(pe_registry_pid) && pe_log "registry: running (pid $r)" || pe_log "registry: stopped"
  [ -n "$d" ] && [ -n "$r" ] || { pe_exports 0; return 3; }
  pe_exports 0
)

# Removes the state directory (registry storage, caches, data root). Only when nothing runs.
pe_clean() (
  set -euo pipefail
  if pe_dockerd_pid >/dev/null || pe_registry_pid >/dev/null; then pe_die "run down first"; fi
  rm -rf "$PE_DIR"
  pe_log "removed $PE_DIR"
)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    install) pe_install ;;
    up) pe_up ;;
    down) pe_down ;;
    status) pe_status ;;
    reset) pe_reset ;;
    start-registry) pe_start_registry ;;
    stop-registry) pe_stop_registry ;;
    restart-dockerd) pe_restart_dockerd ;;
    stop-dockerd) pe_stop_dockerd ;;
    start-dockerd) PE_KEEP_ROOT=1 pe_start_dockerd ;;
    build-bench) pe_build_bench ;;
    busybox-image) pe_busybox_image ;;
    clean) pe_clean ;;
    *)
      echo "usage: $0 install|up|down|status|reset|start-registry|stop-registry|restart-dockerd|stop-dockerd|start-dockerd|build-bench|busybox-image|clean" >&2
      exit 2
      ;;
  esac
fi
