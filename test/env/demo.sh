#!/usr/bin/env bash
# `make demo`: start the local environment (private dockerd, loopback registry, fixture plugins),
# converge examples/ with plugctl, show the result, prove a second apply changes nothing, and stop
# everything it started, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."
ENV=test/env/plugin-env.sh
PLUGCTL=(node_modules/.bin/node bin/plugctl.js)

bash $ENV up >/dev/null
trap 'bash '"$ENV"' down >/dev/null' EXIT
eval "$(bash $ENV status)"
state=$(mktemp -d)
run() { echo "\$ plugctl $*"; "${PLUGCTL[@]}" --state-dir "$state" "$@"; echo; }

run diff -f examples/ || true
run apply -f examples/
run get -f examples/
run apply -f examples/
rm -rf "$state"
