# Shared helpers of the test cluster scripts: logging, paths, requirement
# checks and API requests with the admin credentials. Sourced, not run.

cluster_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo_root=$(cd "$cluster_root/../.." && pwd)

log() { printf 'cluster: %s\n' "$*" >&2; }
fail() {
  printf 'cluster: error: %s\n' "$*" >&2
  exit 1
}

# Prefix of the addresses of every cluster; each cluster takes one /24 in it.
readonly address_base=10.247

# Sets cluster_dir and loads its cluster.env when it exists.
load_cluster() { # id, dir or ''
  cluster_id=$1
  [[ $cluster_id =~ ^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$ ]] ||
    fail "invalid cluster id '$cluster_id': use 1 to 20 lowercase letters, digits and inner hyphens"
  cluster_dir=${2:-${KNR_CLUSTER_DIR:-$cluster_root/.run/$cluster_id}}
  if [[ -f $cluster_dir/cluster.env ]]; then
    # shellcheck source=/dev/null
    source "$cluster_dir/cluster.env"
  fi
}

require_root() {
  [[ $(id -u) -eq 0 ]] || fail "the test cluster creates network namespaces, bridges and mounts, so it must run as root; run it with sudo"
}

# Installs the Debian packages the hosts need, when their commands are missing.
install_packages() {
  local missing=()
  command -v sshd >/dev/null 2>&1 || [[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
  command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
  command -v sudo >/dev/null 2>&1 || missing+=(sudo)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null 2>&1 ||
    fail "missing packages ${missing[*]} and no apt-get to install them; install them with the system's package manager"
  log "installing ${missing[*]} with apt-get"
  {
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  } >&2 || fail "apt-get could not install ${missing[*]}; see its output above"
}

require_tools() {
  local tool
  for tool in ip unshare nsenter mount openssl curl jq ssh ssh-keygen node; do
    command -v "$tool" >/dev/null 2>&1 || fail "required command '$tool' not found in PATH; install it (util-linux, iproute2, openssl, curl, jq, openssh-client, nodejs)"
  done
  [[ -x /usr/sbin/sshd ]] || fail "/usr/sbin/sshd not found; install the Debian package openssh-server"
  ip netns list >/dev/null 2>&1 || fail "'ip netns' does not work here; the kernel or iproute2 lacks network namespace support"
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || fail "the kernel has no overlay filesystem, which the hosts' mount namespaces need"
}

# Finds the binaries through the build script, or in $KNR_BIN_DIR when set,
# and checks each one is there.
find_binaries() {
  local folder binary
  if [[ -n ${KNR_BIN_DIR:-} ]]; then
    folder=$KNR_BIN_DIR
  else
    folder=$(bash "$cluster_root/build.sh") || fail "test/cluster/build.sh failed; see its output above"
  fi
  [[ -d $folder ]] || fail "binaries folder '$folder' (from KNR_BIN_DIR or test/cluster/build.sh) is not a folder"
  for binary in etcd kube-apiserver kube-controller-manager kubelet; do
    [[ -x $folder/$binary ]] || fail "the binaries folder $folder (from KNR_BIN_DIR or test/cluster/build.sh) has no executable '$binary'; unset KNR_BIN_DIR or rerun test/cluster/build.sh"
  done
  printf '%s\n' "$folder"
}

# Compiles the shims (TypeScript) when their output is missing or older than a source.
build_shims() {
  local out="$repo_root/dist/test/cluster/shim/systemctl.js"
  if [[ -f $out ]] && [[ -z $(find "$cluster_root/shim" -name '*.ts' -newer "$out" -print -quit) ]]; then
    return 0
  fi
  log "compiling the host shims"
  (cd "$repo_root" && npx --no-install tsc -p test/cluster/tsconfig.json) >&2 ||
    fail "compiling test/cluster/shim failed; run 'npm ci' in $repo_root first if node_modules is missing"
}

random_lowercase() { # length
  local text=''
  while ((${#text} < $1)); do
    text+=$(head -c 256 /dev/urandom | tr -dc 'a-z0-9')
  done
  printf '%s' "${text:0:$1}"
}

# Runs a request against the API server with the admin client certificate.
# Prints the body; returns 0 for 2xx, 2 for 409 Conflict, 1 otherwise.
kube_request() { # method, path, [json body]
  local method=$1 path=$2 body=${3:-} response status
  local args=(-sS --max-time 20 --cacert "$cluster_dir/pki/ca.crt" --cert "$cluster_dir/pki/admin.crt"
    --key "$cluster_dir/pki/admin.key" -X "$method" -w '\n%{http_code}')
  [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  response=$(curl "${args[@]}" "https://$api_address:6443$path") || return 1
  status=${response##*$'\n'}
  printf '%s\n' "${response%$'\n'*}"
  [[ $status == 2* ]] && return 0
  [[ $status == 409 ]] && return 2
  return 1
}

# Creates an object, treating "already exists" as success.
kube_create() { # collection path, json
  local output code=0
  output=$(kube_request POST "$1" "$2") || code=$?
  ((code == 0 || code == 2)) && return 0
  log "creating $(jq -r '.kind + " " + .metadata.name' <<<"$2") failed: $(jq -r '.message // .' <<<"$output" 2>/dev/null || printf '%s' "$output")"
  return 1
}

wait_for() { # description, timeout seconds, command...
  local description=$1 timeout=$2 deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $description"
      return 1
    fi
    sleep 0.5
  done
}

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# Succeeds when the process is alive and its command line contains the text,
# so that a pid file left by an earlier run never stops an unrelated process.
pid_matches() { # pid, text
  pid_alive "${1:-}" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}
