#!/usr/bin/env bash
# embedded-demo-env.sh: what `make demo` needs, without any dockerd: a loopback registry on
# 127.0.0.1:5000 holding the fixture plugins that examples/ declare, built and pushed by plugctl's
# embedded store itself (`plugctl create` + `plugctl push`).
#
#   bash test/env/embedded-demo-env.sh install|up|down
#   eval "$(bash test/env/embedded-demo-env.sh up)"    # `up` prints `export K=V` lines on stdout
#
# Settings (environment): PE_DIR (default /tmp/plugctl-demo: registry storage, logs, build files;
# deliberately not plugin-env.sh's /tmp/plugctl-env), PE_REG_PORT (default 5000, as examples/ use).
#
# Needs root (apt-get; the demo runs plugins with runc). Fixtures (configs from plugin-env.sh's
# pe_fixture_config, rootfs = static busybox + plugind compiled from plugind.c):
#   test/vol:1.0, test/vol:2.0, test/priv:1.0
# When 127.0.0.1:$PE_REG_PORT is already served by another registry that holds all of them (the
# integration tests' plugin-env.sh registry, whose fixtures dockerd pushed), that one is used as it
# is: nothing is pushed to it and `down` leaves it running. Any other occupant of the port is an error.

PE_DIR=${PE_DIR:-/tmp/plugctl-demo}
# shellcheck source=plugin-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/plugin-env.sh"
# plugin-env.sh points DOCKER_HOST at its private dockerd; nothing here talks to a dockerd.
unset DOCKER_HOST
ED_REPO=$(cd "$PE_SRC/../.." && pwd)
ED_FIXTURES=("test/vol:1.0 vol" "test/vol:2.0 vol" "test/priv:1.0 priv")

ed_plugctl() { "$ED_REPO/node_modules/.bin/node" "$ED_REPO/bin/plugctl.js" "$@"; }

ed_install() (
  set -euo pipefail
  local missing=() p
  for p in docker-registry busybox-static runc gcc libc6-dev curl; do
    pe_pkg_installed "$p" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || pe_die "install needs root to apt-get install: ${missing[*]}"
  pe_log "install: apt-get install ${missing[*]}"
  # the docker-registry package must not start its own service on port 5000
  local made_policy=0 rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=300 "${missing[@]}"
  } >"${TMPDIR:-/tmp}/embedded-demo-apt.log" 2>&1 || rc=$?
  [ $made_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
  if [ $rc != 0 ]; then
    tail -20 "${TMPDIR:-/tmp}/embedded-demo-apt.log" >&2
    pe_die "apt-get install failed (exit $rc); full log in ${TMPDIR:-/tmp}/embedded-demo-apt.log"
  fi
  pe_log "install: done"
)

ed_all_fixtures_present() {
  local f
  for f in "${ED_FIXTURES[@]}"; do pe_manifest_exists "${f%% *}" || return 1; done
}

# Builds every fixture in one temporary embedded store (never the demo's own) and pushes it.
ed_push_fixtures() (
  set -euo pipefail
  local build=$PE_DIR/build ctx f ref kind plugind
  ctx=$build/ctx
  rm -rf "$build"
  mkdir -p "$ctx"/rootfs/{bin,run/docker/plugins,tmp,proc,dev,sys,etc,state,mnt,var/lib/plugind}
  plugind=$(pe_build_plugind)
  cp "$plugind" "$ctx/rootfs/bin/plugind"
  cp /bin/busybox "$ctx/rootfs/bin/busybox"
  ln -s busybox "$ctx/rootfs/bin/sh"
  touch "$ctx/rootfs/etc/hosts" "$ctx/rootfs/etc/resolv.conf"
  local store=(--store embedded --root "$build/root" --state-dir "$build/state")
  for f in "${ED_FIXTURES[@]}"; do
    read -r ref kind <<<"$f"
    echo "$ref" >"$ctx/rootfs/VERSION" # every fixture gets a distinct layer
    pe_fixture_config "$kind" "${ref##*:}" >"$ctx/config.json"
    ed_plugctl "${store[@]}" create "$PE_REG/$ref" "$ctx" >/dev/null
    ed_plugctl "${store[@]}" push "$PE_REG/$ref" >/dev/null
  done
  rm -rf "$build"
  pe_log "pushed fixtures with plugctl create + push: $(printf '%s ' "${ED_FIXTURES[@]%% *}")"
)

ed_up() (
  set -euo pipefail
  [ "$(id -u)" = 0 ] || pe_die "the demo needs root (apt-get, runc)"
  ed_install
  mkdir -p "$PE_DIR"
  [ -x "$ED_REPO/node_modules/.bin/node" ] || pe_die "run 'make deps' first (node_modules/.bin/node is missing)"
  if ! pe_registry_pid >/dev/null && pe_port_taken; then
    pe_registry_ok && ed_all_fixtures_present ||
      pe_die "127.0.0.1:$PE_REG_PORT is taken by something that is not a registry holding the example plugins; stop it first"
    pe_log "using the registry already serving $PE_REG (not ours: nothing pushed, left running)"
  else
    pe_start_registry
    ed_push_fixtures
  fi
  printf 'export PE_DIR=%s\nexport PE_REG=%s\n' "$PE_DIR" "$PE_REG"
)

ed_down() (
  set -uo pipefail
  pe_stop_registry
  # never delete the integration environment's directory with its dockerd running
  if pe_dockerd_pid >/dev/null; then pe_die "$PE_DIR belongs to a running dockerd; not removed"; fi
  rm -rf "$PE_DIR"
  pe_log "down"
)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    install) ed_install ;;
    up) ed_up ;;
    down) ed_down ;;
    *)
      echo "usage: $0 install|up|down" >&2
      exit 2
      ;;
  esac
fi
