# Simulated hosts: a network namespace on the cluster's bridge, mount and UTS
# namespaces with the host's own kubeadm folders, sshd on port 22, and the
# SSH client configuration that reaches them. Sourced, not run.

bridge_name() { printf 'knrb%s\n' "$subnet_index"; }
netns_name() { printf 'knr-%s-%s\n' "$cluster_id" "$1"; }

# The bridge's alias names the cluster that owns it, because another cluster
# may take the same subnet index after this one went down.
bridge_owner() { printf 'knr:%s:%s\n' "$cluster_id" "$cluster_dir"; }

bridge_owned() {
  local bridge
  bridge=$(bridge_name)
  [[ -r /sys/class/net/$bridge/ifalias ]] && [[ $(cat "/sys/class/net/$bridge/ifalias") == "$(bridge_owner)" ]]
}

# Picks the first /24 under $address_base that no interface or bridge on this
# machine uses, and creates the cluster's bridge with its .1 address. A lock
# keeps two clusters that start at once from taking the same subnet.
create_bridge() {
  local index lock
  mkdir -p /run/lock
  exec {lock}>/run/lock/knr-test-cluster.lock
  flock "$lock"
  for index in $(seq 1 254); do
    ip link show "knrb$index" >/dev/null 2>&1 && continue
    ip -4 -o addr show | grep -q " $address_base\.$index\." && continue
    # Host veths of a cluster whose bridge is gone still hold the index.
    ip -o link show | grep -q ": kv${index}h[0-9]*@" && continue
    subnet_index=$index
    api_address="$address_base.$index.1"
    ip link add "knrb$index" type bridge
    ip link set "knrb$index" alias "$(bridge_owner)"
    ip addr add "$api_address/24" dev "knrb$index"
    ip link set "knrb$index" up
    exec {lock}>&-
    return 0
  done
  exec {lock}>&-
  fail "every $address_base.N.0/24 subnet is in use by an interface; run 'test/cluster/cluster down' for clusters you no longer need"
}

# Deletes the cluster's bridge, unless another cluster owns it now.
delete_bridge() {
  [[ -n ${subnet_index:-} ]] || return 0
  if bridge_owned; then
    ip link del "$(bridge_name)"
  elif ip link show "$(bridge_name)" >/dev/null 2>&1; then
    log "leaving bridge $(bridge_name) alone: it belongs to $(cat "/sys/class/net/$(bridge_name)/ifalias" 2>/dev/null || printf 'another owner')"
  fi
}

host_dir() { printf '%s/hosts/%s\n' "$cluster_dir" "$1"; }

host_anchor() { cat "$(host_dir "$1")/anchor.pid" 2>/dev/null || true; }

# Runs a command as root on the host, in all of its namespaces, with a clean environment.
host_exec() { # name, command...
  local name=$1 anchor
  shift
  anchor=$(host_anchor "$name")
  pid_alive "$anchor" || fail "host $name is not running (no namespace anchor process); run 'test/cluster/cluster down' and up again"
  nsenter --target "$anchor" --net --mount --uts -- \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}

# Lays out the host's folders: the host's view of /etc/kubernetes and so on.
make_host_folders() { # name
  local fs
  fs=$(host_dir "$1")/fs
  mkdir -p "$fs/etc/kubernetes/pki" "$fs/etc/kubernetes/manifests" "$fs/etc/default" "$fs/etc/sysconfig" \
    "$fs/etc/systemd/system/kubelet.service.d" "$fs/var/lib/kubelet/pki" "$fs/run" "$fs/var/log" \
    "$fs/usr/lib/systemd/system"
  chmod 700 "$fs/var/lib/kubelet/pki" "$fs/etc/kubernetes/pki"
  [[ -e $fs/usr/lib/systemd/system/kubelet.service ]] || : >"$fs/usr/lib/systemd/system/kubelet.service"
}

# Writes the wrappers that the hosts bind-mount as /usr/bin/systemctl and so on.
write_shim_wrappers() {
  local shim node
  node=$(command -v node)
  mkdir -p "$cluster_dir/shims"
  for shim in systemctl journalctl hostnamectl; do
    printf '#!/bin/sh\nexec %s %s "$@"\n' "$node" "$repo_root/dist/test/cluster/shim/$shim.js" >"$cluster_dir/shims/$shim"
    chmod 755 "$cluster_dir/shims/$shim"
  done
}

ensure_user_key() {
  local keys=$cluster_dir/ssh
  mkdir -p "$keys"
  chmod 700 "$keys"
  [[ -f $keys/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C "knr-$cluster_id" -f "$keys/id_ed25519"
}

write_sshd_config() { # name, address
  local dir
  dir=$(host_dir "$1")
  [[ -f $dir/ssh/ssh_host_ed25519_key ]] || {
    mkdir -p "$dir/ssh"
    ssh-keygen -q -t ed25519 -N '' -C "$1" -f "$dir/ssh/ssh_host_ed25519_key"
  }
  cat >"$dir/ssh/sshd_config" <<CONFIG
# sshd of test host $1: key authentication only, on the host's address.
ListenAddress $2:22
HostKey $dir/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile /etc/ssh/authorized_keys/%u
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
CONFIG
}

start_sshd() { # name
  local dir user
  dir=$(host_dir "$1")
  # The cluster folder is private to root, so each host keeps its own copy
  # of the user key, in its /etc overlay, readable by the logins.
  for user in root knr; do
    host_exec "$1" install -D -m 644 /dev/stdin "/etc/ssh/authorized_keys/$user" <"$cluster_dir/ssh/id_ed25519.pub"
  done
  host_exec "$1" /usr/sbin/sshd -f "$dir/ssh/sshd_config" -E /var/log/sshd.log ||
    fail "sshd did not start on host $1; see $dir/fs/var/log/sshd.log"
}

# Rewrites ssh_config and known_hosts from every host's address and key.
write_ssh_config() {
  local keys=$cluster_dir/ssh dir name address
  : >"$keys/known_hosts.new"
  : >"$keys/ssh_config.new"
  for dir in "$cluster_dir"/hosts/*/; do
    [[ -f $dir/host.env ]] || continue
    name=$(basename "$dir")
    address=$(sed -n 's/^host_address=//p' "$dir/host.env")
    printf '%s,%s %s\n' "$name" "$address" "$(cut -d' ' -f1,2 "$dir/ssh/ssh_host_ed25519_key.pub")" >>"$keys/known_hosts.new"
    cat >>"$keys/ssh_config.new" <<CONFIG
Host $name
  HostName $address
  User root
  Port 22
  IdentityFile $keys/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $keys/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
  LogLevel ERROR

CONFIG
  done
  mv "$keys/known_hosts.new" "$keys/known_hosts"
  mv "$keys/ssh_config.new" "$keys/ssh_config"
}

host_address_for() { printf '%s.%s.%s\n' "$address_base" "$subnet_index" "$((10 + $1))"; }

# Creates and starts one host: namespaces, veth on the bridge, file system, sshd.
create_host() { # name, index
  local name=$1 index=$2 dir netns veth address
  dir=$(host_dir "$name")
  netns=$(netns_name "$name")
  veth="kv${subnet_index}h$index"
  address=$(host_address_for "$index")
  ((10 + index <= 254)) || fail "a cluster holds at most 244 hosts in its /24"
  ip netns list | grep -qx "$netns\( .*\)\?" && fail "network namespace $netns already exists; run 'test/cluster/cluster down --id $cluster_id' first"

  mkdir -p "$dir"
  printf 'host_name=%s\nhost_index=%s\nhost_address=%s\nhost_netns=%s\n' "$name" "$index" "$address" "$netns" >"$dir/host.env"
  make_host_folders "$name"

  ip netns add "$netns"
  ip link add "$veth" type veth peer name eth0 netns "$netns"
  ip link set "$veth" master "$(bridge_name)" up
  ip -n "$netns" addr add "$address/24" dev eth0
  ip -n "$netns" link set lo up
  ip -n "$netns" link set eth0 up

  rm -f "$dir/anchor.pid"
  setsid nsenter --net="/run/netns/$netns" -- unshare --mount --uts --propagation private -- \
    "$cluster_root/lib/host-init.sh" "$dir" "$name" "$cluster_dir/shims" "$bin_dir/kubelet" \
    >>"$dir/init.log" 2>&1 </dev/null &
  wait_for "host $name to set up its namespaces" 30 test -s "$dir/anchor.pid" ||
    fail "host $name did not start; see $dir/init.log"

  write_sshd_config "$name" "$address"
  start_sshd "$name"
}

# Kills every process in the host's namespaces and removes the namespace.
remove_host() { # name
  local name=$1 dir netns pids
  dir=$(host_dir "$name")
  netns=$(sed -n 's/^host_netns=//p' "$dir/host.env" 2>/dev/null || true)
  [[ -n $netns ]] || netns=$(netns_name "$name")
  if ip netns list | grep -q "^$netns\b"; then
    pids=$(ip netns pids "$netns" 2>/dev/null || true)
    [[ -n $pids ]] && kill -TERM $pids 2>/dev/null
    for _ in $(seq 25); do
      pids=$(ip netns pids "$netns" 2>/dev/null || true)
      [[ -z $pids ]] && break
      sleep 0.2
    done
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
    ip netns del "$netns" 2>/dev/null || true
  fi
  local anchor
  anchor=$(host_anchor "$name")
  if pid_matches "$anchor" 'sleep infinity' && [[ $(ip netns identify "$anchor" 2>/dev/null) == "$netns" ]]; then
    kill -KILL "$anchor" 2>/dev/null
  fi
  rm -f "$dir/anchor.pid"
}
