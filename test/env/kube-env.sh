#!/usr/bin/env bash
# kube-env.sh: a real Kubernetes API server (kube-apiserver v1.20.2 and etcd) on 127.0.0.1, for
# plugctl's Kubernetes-mode integration tests. Built only from Debian packages.
#
#   bash test/env/kube-env.sh install|up|down|status|stop-apiserver|kill-apiserver|start-apiserver|clean
#   eval "$(bash test/env/kube-env.sh up)"     # `up` and `status` print `export K=V` lines on stdout
#
#   install          once per machine, as root: Debian packages, kubectl 1.20 taken out of Debian's
#                    kubernetes-client .deb, and kube-apiserver built from Debian's `kubernetes`
#                    source package (~8-10 min on 2 cores). A no-op once cached.
#   up               starts etcd (fresh data) and kube-apiserver, waits for /readyz and the default
#                    namespace, writes an admin kubeconfig. Reuses a healthy running pair.
#   down             stops exactly the processes `up` started, by PID (SIGTERM, then SIGKILL).
#   stop-apiserver   stops only kube-apiserver (etcd and its data stay), so a test can show that
#   kill-apiserver   clients survive a restarted API server; kill-apiserver is a crash (SIGKILL, no
#   start-apiserver  graceful drain of open watches); start-apiserver brings it back.
#   clean            removes the run directory (only when nothing runs).
#
# Settings (environment, read on every call):
#   KE_CACHE    /var/cache/kube-env    binaries, PKI and the build log; outside any work tree
#   KE_DIR      /tmp/plugctl-kube      run dir: etcd data, logs, PID files, kubeconfig
#   KE_PORT     6443                   kube-apiserver HTTPS port on 127.0.0.1
#   KE_ETCD_PORT / KE_ETCD_PEER_PORT   12379 / 12380 (not 2379: a distro etcd.service may own it)
#   KE_TIMEOUT  120                    seconds to wait for readiness
#
# What runs: only the API server (no controller-manager, no scheduler). CRDs, RBAC, admission,
# watches, server-side apply, Leases and Events work; nothing reconciles (no garbage collection, no
# default ServiceAccounts), so tests create Node objects and ServiceAccounts themselves.
#
# Safety: everything listens on 127.0.0.1; every process is started with its PID recorded and stopped
# by that PID only after checking it still runs our binary for this KE_DIR; /etc/apt is never
# modified (deb-src entries are derived from apt's own sources into a private apt configuration), and
# /usr/bin is left alone (kubectl goes to $KE_CACHE/bin). No host name or URL is written here.

[ -n "${BASH_VERSION:-}" ] || { echo "kube-env.sh: bash is required" >&2; exit 1; }

KE_K8S_VERSION=1.20.2          # upstream version of bookworm's `kubernetes` (1.20.5+really1.20.2)
KE_GO_BIN=/usr/lib/go-1.19/bin # the Go bookworm builds that package with
KE_ETCD_BIN=/usr/bin/etcd      # Debian's etcd-server (3.4)
# reflect2 1.0.1 (vendored) panics on Go >= 1.18 when the first object is created; Debian's packaged
# 1.0.2 is API-compatible and fixed.
KE_REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
KE_PACKAGES=(golang-1.19-go golang-github-modern-go-reflect2-dev make rsync jq dpkg-dev etcd-server curl openssl)

KE_CACHE=${KE_CACHE:-/var/cache/kube-env}
KE_DIR=${KE_DIR:-/tmp/plugctl-kube}
KE_PORT=${KE_PORT:-6443}
KE_ETCD_PORT=${KE_ETCD_PORT:-12379}
KE_ETCD_PEER_PORT=${KE_ETCD_PEER_PORT:-12380}
KE_TIMEOUT=${KE_TIMEOUT:-120}
KE_APISERVER=$KE_CACHE/kube-apiserver-$KE_K8S_VERSION
KE_KUBECTL=$KE_CACHE/kubectl-$KE_K8S_VERSION
KE_PKI=$KE_CACHE/pki

ke_log() { printf '[kube-env %s] %s\n' "$(date +%T.%3N)" "$*" >&2; }
ke_die() { ke_log "error: $*"; exit 1; }

ke_check_settings() {
  local d p
  for d in "$KE_CACHE" "$KE_DIR"; do
    [[ $d == /?* && $d != *[[:space:]]* ]] || ke_die "KE_CACHE and KE_DIR must be absolute paths without spaces (got '$d')"
  done
  for p in "$KE_PORT" "$KE_ETCD_PORT" "$KE_ETCD_PEER_PORT" "$KE_TIMEOUT"; do
    [[ $p =~ ^[0-9]+$ ]] || ke_die "ports and KE_TIMEOUT must be numbers (got '$p')"
  done
}

# "1.20.5+really1.20.2-1.1+deb12u1" -> "1.20.2": no epoch, no Debian revision, no "+really" prefix.
ke_upstream_version() { local v=${1#*:}; v=${v%-*}; echo "${v##*really}"; }

# A live (not zombie) process?
ke_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ]
}

# The PID recorded for NAME (etcd | kube-apiserver), printed only if that process is alive, runs the
# binary we start and was started for this KE_DIR: a stale PID file or a reused PID is never signalled.
ke_pid_of() {
  local name=$1 pid exe want
  pid=$(cat "$KE_DIR/$name.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && ke_alive "$pid" || return 1
  case $name in
    etcd) want=$KE_ETCD_BIN ;;
    kube-apiserver) want=$KE_APISERVER ;;
    *) return 1 ;;
  esac
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [ "${exe% (deleted)}" = "$(readlink -f "$want")" ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$KE_DIR/" || return 1
  echo "$pid"
}

ke_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Polls CHECK... every 0.2 s for at most SECS; fails at once when PID (unless "-") has exited.
ke_wait() {
  local what=$1 secs=$2 pid=$3
  shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$pid" != - ] && ! ke_alive "$pid"; then ke_die "$what: process $pid exited (log: $KE_DIR)"; fi
    ((SECONDS < deadline)) || ke_die "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}

# Starts NAME CMD... as a daemon in its own session: stdin /dev/null, output to $KE_DIR/NAME.log,
# descriptors above 2 closed (it must not hold a test runner's pipes open), an empty environment but
# PATH. The wrapper records its own PID and then execs, so the PID file holds the daemon's PID.
ke_spawn() {
  local name=$1
  shift
  rm -f "$KE_DIR/$name.pid"
  # shellcheck disable=SC2016  # expanded by the inner bash
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin setsid -f bash -c '
      echo $$ >"$0"
      for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && exec {fd}>&-; done
      exec "$@"' "$KE_DIR/$name.pid" "$@" </dev/null >"$KE_DIR/$name.log" 2>&1
  ke_wait "$name to start" 5 - test -s "$KE_DIR/$name.pid"
}

# Stops NAME if ke_pid_of vouches for it: SIGNAL (default TERM), up to 30 s, then SIGKILL.
ke_stop() {
  local name=$1 signal=${2:-TERM} pid i
  if pid=$(ke_pid_of "$name"); then
    kill "-$signal" "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do ke_alive "$pid" || break; sleep 0.2; done
    if ke_alive "$pid"; then
      ke_log "$name ($pid) ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 25; i++)); do ke_alive "$pid" || break; sleep 0.2; done
    fi
    ke_log "stopped $name (pid $pid)"
  elif [ -e "$KE_DIR/$name.pid" ]; then
    ke_log "$name: $KE_DIR/$name.pid does not name our running $name; removing it"
  fi
  rm -f "$KE_DIR/$name.pid"
}

# ------------------------------------------------------------------------------------------ install

ke_install_packages() {
  local p missing=()
  for p in "${KE_PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  ((EUID == 0)) || ke_die "missing Debian packages (${missing[*]}): run install as root"
  ke_log "apt-get install ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

ke_apt_lists() { apt-cache show kubernetes-client >/dev/null 2>&1 || apt-get update -q; }

# kubectl 1.20.2 out of Debian's kubernetes-client .deb, into $KE_CACHE (it cannot be installed next
# to another package owning /usr/bin/kubectl, and the tests want exactly the server's version).
ke_install_kubectl() {
  local tmp deb ver
  if [ ! -x "$KE_KUBECTL" ]; then
    ke_apt_lists
    tmp=$(mktemp -d "$KE_CACHE/kubectl.XXXXXX")
    chown _apt "$tmp" 2>/dev/null || true # apt downloads as its sandbox user
    (cd "$tmp" && apt-get download -q kubernetes-client)
    deb=$(echo "$tmp"/kubernetes-client_*.deb)
    ver=$(ke_upstream_version "$(dpkg-deb -f "$deb" Version)")
    [ "$ver" = "$KE_K8S_VERSION" ] || ke_die "kubernetes-client is $ver, expected $KE_K8S_VERSION"
    dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/kubectl >"$KE_KUBECTL.tmp"
    chmod 0755 "$KE_KUBECTL.tmp"
    mv -f "$KE_KUBECTL.tmp" "$KE_KUBECTL"
    rm -rf -- "$tmp"
  fi
  mkdir -p "$KE_CACHE/bin"
  ln -sfn "../kubectl-$KE_K8S_VERSION" "$KE_CACHE/bin/kubectl"
}

ke_build_apiserver() {
  local work apt src ver keyring=/usr/share/keyrings/debian-archive-keyring.gpg signed=""
  [ -x "$KE_APISERVER" ] && return 0
  work=$KE_CACHE/build # ~2 GB of scratch, removed after a successful build
  rm -rf -- "$work"
  mkdir -p "$work/apt/sources.list.d" "$work/apt/lists/partial" "$work/src" "$work/home"

  # deb-src lines for exactly the Debian archives apt already uses, in a private apt configuration.
  ke_apt_lists
  [ -r "$keyring" ] && signed="[signed-by=$keyring] "
  # shellcheck disable=SC2016  # apt's format fields
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' 'Origin: Debian' |
    sort -u | while read -r uri suite comp; do echo "deb-src $signed$uri $suite $comp"; done \
    >"$work/apt/sources.list.d/deb-src.list"
  [ -s "$work/apt/sources.list.d/deb-src.list" ] || ke_die "no Debian archive in apt's sources"
  apt=(apt-get -q -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$work/apt/sources.list.d"
    -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
  "${apt[@]}" update
  chown _apt "$work/src" 2>/dev/null || true
  (cd "$work/src" && "${apt[@]}" source kubernetes) # verified by apt against the archive's signature

  src=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
  [ -n "$src" ] || ke_die "apt-get source kubernetes produced no source tree"
  ver=$(ke_upstream_version "$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)")
  [ "$ver" = "$KE_K8S_VERSION" ] || ke_die "the source package is $ver, expected $KE_K8S_VERSION"
  rm -rf -- "$src/vendor/github.com/modern-go/reflect2"
  cp -rL "$KE_REFLECT2_SRC" "$src/vendor/github.com/modern-go/reflect2"

  # As debian/rules builds it: a GOPATH layout, upstream make, a clean environment.
  mkdir -p "$src/.go/src/k8s.io"
  ln -sfn ../../.. "$src/.go/src/k8s.io/kubernetes"
  ke_log "building kube-apiserver v$KE_K8S_VERSION (about 8-10 min on 2 cores); log: $KE_CACHE/build.log"
  (cd "$src" && env -i PATH="$KE_GO_BIN:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$work/home" LANG=C.UTF-8 \
    GOPATH="$src/.go" GO111MODULE=off CGO_ENABLED=0 \
    make WHAT=cmd/kube-apiserver KUBE_GIT_VERSION="v$KE_K8S_VERSION") >"$KE_CACHE/build.log" 2>&1 ||
    { tail -n 30 "$KE_CACHE/build.log" >&2; ke_die "the build failed"; }
  "$src/_output/bin/kube-apiserver" --version | grep -qx "Kubernetes v$KE_K8S_VERSION" ||
    ke_die "the built binary does not report v$KE_K8S_VERSION"
  install -m 0755 "$src/_output/bin/kube-apiserver" "$KE_APISERVER.tmp"
  mv -f "$KE_APISERVER.tmp" "$KE_APISERVER"
  rm -rf -- "$work"
  ke_log "kube-apiserver cached at $KE_APISERVER"
}

# The PKI, once: a CA (also the client CA), a serving certificate for 127.0.0.1 and localhost, the
# service-account key pair, and a static admin token in group system:masters. Made in a temporary
# directory and renamed into place, under a lock, so a half-made PKI is never used.
ke_pki() {
  [ -s "$KE_PKI/tokens.csv" ] && return 0
  mkdir -p "$KE_CACHE"
  (
    exec 9>"$KE_CACHE/.pki.lock"
    flock 9
    [ -s "$KE_PKI/tokens.csv" ] && exit 0
    tmp=$(mktemp -d "$KE_CACHE/pki.XXXXXX") || exit 1
    cd "$tmp" || exit 1
    cat >openssl.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = plugctl-kube-env
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    umask 077
    # One && chain: errexit does not apply inside a subshell whose status is tested.
    openssl req -config openssl.cnf -x509 -newkey rsa:2048 -nodes -days 3650 \
      -subj /CN=plugctl-kube-env-ca -extensions ca -keyout ca.key -out ca.crt 2>/dev/null &&
      openssl req -config openssl.cnf -new -newkey rsa:2048 -nodes \
        -subj /CN=kube-apiserver -keyout apiserver.key -out apiserver.csr 2>/dev/null &&
      openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -days 3650 \
        -set_serial "0x$(openssl rand -hex 16)" -extfile openssl.cnf -extensions server \
        -out apiserver.crt 2>/dev/null &&
      openssl genrsa -out sa.key 2048 2>/dev/null &&
      openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null &&
      printf '%s,admin,admin,"system:masters"\n' "$(openssl rand -hex 32)" >tokens.csv ||
      { cd / && rm -rf -- "$tmp"; exit 1; }
    rm -f apiserver.csr openssl.cnf
    cd / && mv -T "$tmp" "$KE_PKI"
  ) || ke_die "generating the PKI failed"
}

ke_install() (
  set -euo pipefail
  ke_check_settings
  mkdir -p "$KE_CACHE" || ke_die "cannot create $KE_CACHE (run as root)"
  exec 9>"$KE_CACHE/.install.lock"
  flock 9 # one installer at a time
  ke_install_packages
  ke_install_kubectl
  ke_build_apiserver
  ke_pki
  ke_log "installed: $KE_APISERVER, $KE_KUBECTL"
)

# -------------------------------------------------------------------------------------- up / down

ke_token() { cut -d, -f1 "$KE_PKI/tokens.csv"; }

ke_curl() { # PATH: GET https://127.0.0.1:$KE_PORT/PATH as the admin
  curl -fsS --noproxy '*' --max-time 3 --cacert "$KE_PKI/ca.crt" \
    -H "Authorization: Bearer $(ke_token)" "https://127.0.0.1:$KE_PORT/$1"
}
ke_ready() { [ "$(ke_curl readyz)" = ok ]; }

ke_start_etcd() {
  local pid
  ke_port_busy "$KE_ETCD_PORT" && ke_die "127.0.0.1:$KE_ETCD_PORT is in use (set KE_ETCD_PORT)"
  ke_port_busy "$KE_ETCD_PEER_PORT" && ke_die "127.0.0.1:$KE_ETCD_PEER_PORT is in use (set KE_ETCD_PEER_PORT)"
  rm -rf -- "$KE_DIR/etcd"
  ke_spawn etcd "$KE_ETCD_BIN" --name plugctl-kube-env --data-dir "$KE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$KE_ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$KE_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$KE_ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$KE_ETCD_PEER_PORT" \
    --initial-cluster "plugctl-kube-env=http://127.0.0.1:$KE_ETCD_PEER_PORT" \
    --initial-cluster-state new --logger zap --log-level warn
  pid=$(cat "$KE_DIR/etcd.pid")
  # shellcheck disable=SC2016  # $0 belongs to the inner bash
  ke_wait "etcd health" "$KE_TIMEOUT" "$pid" \
    bash -c 'curl -fsS --noproxy "*" --max-time 2 "$0" | grep -q "\"health\":\"true\""' \
    "http://127.0.0.1:$KE_ETCD_PORT/health"
}

ke_start_apiserver_process() {
  local pid
  ke_port_busy "$KE_PORT" && ke_die "127.0.0.1:$KE_PORT is in use (set KE_PORT)"
  ke_spawn kube-apiserver "$KE_APISERVER" \
    --etcd-servers="http://127.0.0.1:$KE_ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$KE_PORT" \
    --cert-dir="$KE_DIR/certs" \
    --tls-cert-file="$KE_PKI/apiserver.crt" --tls-private-key-file="$KE_PKI/apiserver.key" \
    --client-ca-file="$KE_PKI/ca.crt" \
    --token-auth-file="$KE_PKI/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer="https://127.0.0.1:$KE_PORT" \
    --service-account-key-file="$KE_PKI/sa.pub" \
    --service-account-signing-key-file="$KE_PKI/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --endpoint-reconciler-type=none \
    --profiling=false
  pid=$(cat "$KE_DIR/kube-apiserver.pid")
  ke_wait "kube-apiserver /readyz" "$KE_TIMEOUT" "$pid" ke_ready
  # The default namespace appears just after /readyz; the tests expect it.
  ke_wait "namespace default" "$KE_TIMEOUT" "$pid" ke_curl api/v1/namespaces/default
}

ke_write_kubeconfig() {
  (umask 077 && cat >"$KE_DIR/kubeconfig.tmp") <<EOF
apiVersion: v1
kind: Config
clusters:
- name: plugctl-kube-env
  cluster:
    server: https://127.0.0.1:$KE_PORT
    certificate-authority-data: $(base64 -w0 "$KE_PKI/ca.crt")
users:
- name: admin
  user:
    token: $(ke_token)
contexts:
- name: plugctl-kube-env
  context: {cluster: plugctl-kube-env, user: admin, namespace: default}
current-context: plugctl-kube-env
EOF
  mv -f "$KE_DIR/kubeconfig.tmp" "$KE_DIR/kubeconfig"
}

ke_exports() { # STARTED
  echo "export KUBECONFIG=$KE_DIR/kubeconfig"
  echo "export KE_SERVER=https://127.0.0.1:$KE_PORT"
  echo "export KE_CA=$KE_PKI/ca.crt"
  echo "export KE_KUBECTL=$KE_KUBECTL"
  echo "export KE_DIR=$KE_DIR"
  echo "export KE_STARTED=$1"
}

ke_installed() { [ -x "$KE_APISERVER" ] && [ -x "$KE_KUBECTL" ] && [ -x "$KE_ETCD_BIN" ]; }

ke_up() (
  set -euo pipefail
  ke_check_settings
  ke_installed || ke_die "not installed: run \`make kube-env-install\` (as root) first"
  ke_pki
  if ke_pid_of etcd >/dev/null && ke_pid_of kube-apiserver >/dev/null && ke_ready; then
    ke_log "already running (KE_DIR=$KE_DIR)"
    ke_write_kubeconfig
    ke_exports 0
    exit 0
  fi
  ke_stop kube-apiserver # half-up leftovers of our own, if any
  ke_stop etcd
  install -d -m 0700 "$KE_DIR"
  touch "$KE_DIR/.plugctl-kube-env" # marks the directory as ours, for clean
  rm -f "$KE_DIR/etcd.log" "$KE_DIR/kube-apiserver.log"
  if ! (ke_start_etcd && ke_start_apiserver_process); then
    for f in etcd kube-apiserver; do
      [ -s "$KE_DIR/$f.log" ] && { ke_log "last lines of $KE_DIR/$f.log:"; tail -n 15 "$KE_DIR/$f.log" >&2; }
    done
    ke_stop kube-apiserver
    ke_stop etcd
    exit 1
  fi
  ke_write_kubeconfig
  ke_log "up: https://127.0.0.1:$KE_PORT (etcd pid $(cat "$KE_DIR/etcd.pid"), kube-apiserver pid $(cat "$KE_DIR/kube-apiserver.pid"))"
  ke_exports 1
)

ke_down() (
  set -euo pipefail
  ke_check_settings
  ke_stop kube-apiserver
  ke_stop etcd
)

ke_stop_apiserver() (
  set -euo pipefail
  ke_check_settings
  ke_stop kube-apiserver
)

# A crash: SIGKILL, no graceful shutdown (which waits for open watches to drain).
ke_kill_apiserver() (
  set -euo pipefail
  ke_check_settings
  ke_stop kube-apiserver KILL
)

ke_start_apiserver() (
  set -euo pipefail
  ke_check_settings
  ke_pid_of etcd >/dev/null || ke_die "etcd is not running: use up"
  ke_pid_of kube-apiserver >/dev/null && ke_ready && exit 0
  ke_stop kube-apiserver
  ke_start_apiserver_process
  ke_log "kube-apiserver started again (pid $(cat "$KE_DIR/kube-apiserver.pid"))"
)

ke_status() (
  set -uo pipefail
  ke_check_settings
  local n pid rc=0
  for n in etcd kube-apiserver; do
    if pid=$(ke_pid_of "$n"); then ke_log "$n: running (pid $pid)"; else ke_log "$n: stopped"; rc=3; fi
  done
  ((rc == 0)) && ke_ready || rc=3
  ke_exports 0
  return "$rc"
)

ke_clean() (
  set -euo pipefail
  ke_check_settings
  if ke_pid_of etcd >/dev/null || ke_pid_of kube-apiserver >/dev/null; then ke_die "run down first"; fi
  [ -e "$KE_DIR/.plugctl-kube-env" ] || { ke_log "$KE_DIR is not ours (or absent); nothing removed"; exit 0; }
  rm -rf -- "$KE_DIR"
  ke_log "removed $KE_DIR"
)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    install) ke_install ;;
    up) ke_up ;;
    down) ke_down ;;
    status) ke_status ;;
    stop-apiserver) ke_stop_apiserver ;;
    kill-apiserver) ke_kill_apiserver ;;
    start-apiserver) ke_start_apiserver ;;
    clean) ke_clean ;;
    *)
      echo "usage: $0 install|up|down|status|stop-apiserver|kill-apiserver|start-apiserver|clean" >&2
      exit 2
      ;;
  esac
fi
