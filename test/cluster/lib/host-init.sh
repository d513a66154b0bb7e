#!/usr/bin/env bash
# Runs as the first process of a test host, inside the host's new mount and
# UTS namespaces (and its network namespace): lays out the host's file system
# and then sleeps, keeping the namespaces alive for sshd and the kubelet.
# Arguments: host folder, host name, shims folder, kubelet binary.
set -euo pipefail
host_dir=$1 name=$2 shims=$3 kubelet=$4

hostname "$name"
# Nothing mounted here may reach the machine's namespace.
mount --make-rprivate /

# Overlays give the host its own writable /etc, /var/lib and /usr on top of
# the machine's, so mount points and the knr user exist only on this host.
overlay() { # target, layer name
  mkdir -p "$host_dir/overlay/$2/upper" "$host_dir/overlay/$2/work"
  mount -t overlay "knr-$name-$2" \
    -o "lowerdir=$1,upperdir=$host_dir/overlay/$2/upper,workdir=$host_dir/overlay/$2/work" "$1"
}
overlay /etc etc
overlay /var/lib var-lib
overlay /usr usr

bind() { # source in the host folder, target
  if [[ -d $1 ]]; then mkdir -p "$2"; else [[ -e $2 ]] || touch "$2"; fi
  mount --bind "$1" "$2"
}
fs=$host_dir/fs
bind "$fs/etc/kubernetes" /etc/kubernetes
bind "$fs/etc/default" /etc/default
bind "$fs/etc/sysconfig" /etc/sysconfig
bind "$fs/etc/systemd/system" /etc/systemd/system
bind "$fs/var/lib/kubelet" /var/lib/kubelet
bind "$fs/run" /run
bind "$fs/var/log" /var/log
mkdir -p /usr/lib/systemd/system
bind "$fs/usr/lib/systemd/system/kubelet.service" /usr/lib/systemd/system/kubelet.service
bind "$kubelet" /usr/bin/kubelet
for shim in systemctl journalctl hostnamectl; do
  bind "$shims/$shim" "/usr/bin/$shim"
done

printf '%s\n' "$name" >/etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" >/etc/hosts
mkdir -p /run/sshd /var/run
chmod 755 /run/sshd

# The unprivileged login that exercises `sudo -n`.
if ! id knr >/dev/null 2>&1; then
  useradd --create-home --home-dir /var/lib/knr --shell /bin/bash knr
  usermod --password '*' knr
fi
printf 'knr ALL=(ALL) NOPASSWD:ALL\n' >/etc/sudoers.d/knr
chmod 440 /etc/sudoers.d/knr

printf '%s\n' "$$" >"$host_dir/anchor.pid"
exec sleep infinity
