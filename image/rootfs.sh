#!/usr/bin/env bash
# Assembles the root filesystem of plugctl's image in OUT: the Node.js binary (stripped of its
# symbols where `strip` exists), the shared libraries and dynamic loader it is linked against (at
# the paths it asks for, as ldd lists them), the npm package PACKAGE_TGZ installed with its
# production dependencies under /usr/local, a non-root user (65532, `plugctl`), a writable /tmp and
# the state directory. The Dockerfile's build stage runs it; test/integration/image.test.ts runs it
# too and imports OUT with `docker import`, so both images are the same.
#
#   image/rootfs.sh NODE PACKAGE_TGZ OUT     (as root; NPM_OFFLINE=1: dependencies from the npm cache where it has them)
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 NODE PACKAGE_TGZ OUT" >&2; exit 2; }
node=$(readlink -f "$1")
tgz=$(readlink -f "$2")
out=$3
uid=65532

install -d -m 0755 "$out" "$out/usr/local/bin" "$out/etc"
install -d -m 1777 "$out/tmp"
install -d -m 0700 -o "$uid" -g "$uid" "$out/var/lib/plugctl"

install -m 0755 "$node" "$out/usr/local/bin/node"
if command -v strip >/dev/null; then strip "$out/usr/local/bin/node"; fi

# `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and `/lib64/ld-linux-x86-64.so.2 (0x...)`;
# a library's file is copied (not its symlink) to the path the binary names.
ldd "$node" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
  install -D -m 0755 "$(readlink -f "$lib")" "$out$lib"
done

printf 'root:x:0:0:root:/root:/sbin/nologin\nplugctl:x:%s:%s:plugctl:/nonexistent:/sbin/nologin\n' "$uid" "$uid" >"$out/etc/passwd"
printf 'root:x:0:\nplugctl:x:%s:\n' "$uid" >"$out/etc/group"

# npm runs on the Node being installed, whatever `node` is on PATH
PATH="$(dirname "$node"):$PATH" npm install -g --prefix "$out/usr/local" --omit=dev --no-audit --no-fund \
  --loglevel=error ${NPM_OFFLINE:+--prefer-offline} "$tgz"
