#!/usr/bin/env bash
# registry-env.sh: the packages the registry-client integration tests and bench/update-check.ts need:
# Debian's docker-registry (distribution 2.8), htpasswd (apache2-utils, for bcrypt htpasswd files)
# and openssl (the token issuer's key and self-signed certificate).
#
#   bash test/env/registry-env.sh install     # apt-get install what is missing (root)
#   bash test/env/registry-env.sh check       # exit 0 when everything is there, else list what is not
#
# The registry package's own service must not start (it would take port 5000): installs run with a
# policy-rc.d that forbids starting services, removed again afterwards if this script created it.
set -euo pipefail

PACKAGES=(docker-registry apache2-utils openssl)

missing() {
  local p
  for p in "${PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || echo "$p"
  done
}

case "${1:-check}" in
  check)
    m=$(missing)
    if [ -n "$m" ]; then
      echo "missing packages: $m" >&2
      exit 1
    fi
    ;;
  install)
    mapfile -t m < <(missing)
    [ ${#m[@]} -eq 0 ] && exit 0
    [ "$(id -u)" = 0 ] || { echo "registry-env: installing ${m[*]} needs root" >&2; exit 1; }
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      made_policy=1
    fi
    rc=0
    {
      DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
          -o DPkg::Lock::Timeout=300 "${m[@]}"
    } >"${TMPDIR:-/tmp}/registry-env-apt.log" 2>&1 || rc=$?
    [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    if [ $rc -ne 0 ]; then
      echo "registry-env: apt-get install ${m[*]} failed; see ${TMPDIR:-/tmp}/registry-env-apt.log" >&2
      exit $rc
    fi
    ;;
  *)
    echo "usage: $0 install|check" >&2
    exit 2
    ;;
esac
