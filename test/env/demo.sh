#!/usr/bin/env bash
# `make demo`: converge examples/ with plugctl's embedded store (no dockerd): start a loopback
# registry (on 127.0.0.1:5000, or on a free port when 5000 is taken) with the example plugins (built and pushed by `plugctl create` + `plugctl push`), then on
# an empty store under a temporary root run diff, apply, get, show the running plugin answering on
# its socket, apply again (nothing to do), and remove the set with `plugctl prune --set` (an empty
# directory never removes anything).
# Whatever happens, it stops what it started: plugins (by ID), the registry (by PID), temp dirs.
set -euo pipefail
cd "$(dirname "$0")/../.."
ENV=test/env/embedded-demo-env.sh
export PE_DIR=${PE_DIR:-/tmp/plugctl-demo}
RUNC_ROOT=/run/plugctl/runc # the embedded store's runc state root
RUN_DIR=/run/plugctl/plugins # its per-plugin runtime state
SOCKETS=/run/docker/plugins  # per-plugin socket directories and <name>.sock discovery links
t0=$(date +%s%N)

demo=$(mktemp -d /tmp/plugctl-demo-store.XXXXXX)
root=$demo/root state=$demo/state
# The registry: port 5000, which examples/ name, when it is free (or PE_REG_PORT); else any free
# loopback port the kernel gives, and the examples are converged from a copy that names it.
if [ -z "${PE_REG_PORT:-}" ]; then
  PE_REG_PORT=5000
  if (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null; then
    PE_REG_PORT=$(node_modules/.bin/node -e \
      "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })")
  fi
fi
export PE_REG_PORT
examples=examples
if [ "$PE_REG_PORT" != 5000 ]; then
  examples=$demo/examples
  cp -r examples "$examples"
  sed -i "s|127\.0\.0\.1:5000/|127.0.0.1:$PE_REG_PORT/|" "$examples"/*.yaml
fi
# the apply set of `-f $examples`: its canonical path
set="files:$(realpath "$examples")"
PLUGCTL=(node_modules/.bin/node bin/plugctl.js --store embedded --root "$root" --state-dir "$state")

# the demo's plugins: those still in its root, and those whose runtime state (bundle) points into it
ours() {
  {
    ls "$root" 2>/dev/null | grep -E '^[0-9a-f]{64}$'
    grep -lF "\"$root/" "$RUN_DIR"/*/bundle/config.json 2>/dev/null | awk -F/ '{print $(NF-2)}'
  } | sort -u
}

cleanup() {
  local rc=$? id
  set +e
  # the normal way out: prune the demo's apply set, removing every plugin it installed
  [ -d "$root" ] && "${PLUGCTL[@]}" prune --set "$set" >/dev/null 2>&1
  # whatever that left (an interrupted or failed run), stopped by ID
  for id in $(ours); do
    runc --root "$RUNC_ROOT" delete --force "$id" >/dev/null 2>&1
    find "$SOCKETS" -maxdepth 1 -type l -lname "$id/*" -delete 2>/dev/null
    awk -v d="$SOCKETS/$id" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l
    # the store keeps a plugin's runtime state dir (bundle, log) after `remove`
    rm -rf "${SOCKETS:?}/$id" "${RUN_DIR:?}/$id"
  done
  rm -rf "$demo"
  bash $ENV down 2>/dev/null
  echo "demo finished in $((($(date +%s%N) - t0) / 1000000)) ms (exit $rc); stopped what it started"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eval "$(bash $ENV up)"
echo "registry: $PE_REG; plugctl --store embedded --root $root --state-dir $state"
echo
run() { echo "\$ plugctl $*"; "${PLUGCTL[@]}" "$@"; echo; }

run diff -f "$examples" || true
run apply -f "$examples"
run get -f "$examples"
echo "\$ curl --unix-socket $SOCKETS/vol.sock -X POST http://plugin/Plugin.Activate"
curl -fsS --max-time 5 --unix-socket "$SOCKETS/vol.sock" -X POST http://plugin/Plugin.Activate
printf '\n\n'
run apply -f "$examples"
run prune --set "$set"
