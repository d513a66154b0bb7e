#!/usr/bin/env bash
# Measures the test cluster: control plane start with freshly built and with
# cached binaries, the time to add and join one host, memory per host, and
# a cluster of many hosts (default 50). Prints a Markdown section; with
# --write it replaces the "## Test cluster" section of docs/benchmarks.md.
#
# Usage: test/cluster/measure.sh [--hosts N] [--write]   (as root)
# Uses cluster id "measure" and removes that cluster at the end.
set -euo pipefail

cluster_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$cluster_root/../.." && pwd)
cluster="$cluster_root/cluster"
many_hosts=50
write=no
while (($# > 0)); do
  case $1 in
    --hosts) many_hosts=${2:?--hosts needs a number}; shift 2 ;;
    --write) write=yes; shift ;;
    *) printf 'measure.sh: unknown argument %s; usage: measure.sh [--hosts N] [--write]\n' "$1" >&2; exit 1 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { printf 'measure.sh: run as root, as test/cluster/cluster needs\n' >&2; exit 1; }

id=measure
dir=$(mktemp -d /tmp/knr-measure.XXXXXX)
cleanup() {
  "$cluster" down --id "$id" --dir "$dir/cluster" --purge >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

log() { printf 'measure.sh: %s\n' "$*" >&2; }

# Prints the seconds a command takes, with millisecond resolution.
seconds() {
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null
  end=$(date +%s%N)
  awk -v ns=$((end - start)) 'BEGIN { printf "%.1f", ns / 1e9 }'
}

rss_kib() { # pid
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || printf '0\n'
}

# Sums the RSS (KiB) of processes in a host's network namespace whose command matches.
host_rss_kib() { # netns, command pattern
  local pid total=0
  for pid in $(ip netns pids "$1"); do
    if grep -qE "$2" "/proc/$pid/comm" 2>/dev/null; then
      total=$((total + $(rss_kib "$pid")))
    fi
  done
  printf '%s\n' "$total"
}

mib() { awk -v kib="$1" 'BEGIN { printf "%.0f", kib / 1024 }'; }

# Cold start: binaries built into an empty cache folder (Go's own module and
# build caches stay warm, so this is a link, not a full compile), then up.
if pgrep -f 'go build' >/dev/null; then
  log "a Go build is running; measuring the cold start would start a second one, so it is skipped"
  cold='skipped (a Go build was running)'
else
  log "cold start: building into an empty cache folder, then starting the control plane"
  cold=$(seconds env -u KNR_BIN_DIR KNR_CACHE_DIR="$dir/cache" "$cluster" up --hosts 0 --id "$id" --dir "$dir/cluster")
  "$cluster" down --id "$id" --dir "$dir/cluster" --purge >/dev/null 2>&1
  cold="$cold s"
fi

log "cached start: starting the control plane with cached binaries"
bin_dir=$(env -u KNR_CACHE_DIR bash "$cluster_root/build.sh")
cached=$(seconds env KNR_BIN_DIR="$bin_dir" "$cluster" up --hosts 0 --id "$id" --dir "$dir/cluster")
log "joining one host"
join=$(seconds env KNR_BIN_DIR="$bin_dir" "$cluster" add-host --id "$id" --dir "$dir/cluster" node-1)
"$cluster" down --id "$id" --dir "$dir/cluster" --purge >/dev/null 2>&1

log "starting $many_hosts hosts"
available_before=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
many_status=ok
many=$(seconds env KNR_JOIN_TIMEOUT=900 KNR_BIN_DIR="$bin_dir" "$cluster" up --hosts "$many_hosts" --id "$id" --dir "$dir/cluster") || many_status=failed
sleep 30 # let every kubelet finish its start-up work before reading memory
available_after=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
# CPU over 10 s while the hosts idle: the machine's busy share of both cores
# (from /proc/stat, so other work counts too) and the cluster's own processes.
cpu_ticks() { awk '/^cpu / { idle = $5 + $6; total = 0; for (i = 2; i <= NF; i++) total += $i; print total, idle }' /proc/stat; }
process_ticks() { # pids...
  local pid sum=0
  for pid in "$@"; do
    sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || printf '0')))
  done
  printf '%s\n' "$sum"
}
host_pids=()
for host_env in "$dir"/cluster/hosts/*/host.env; do
  mapfile -t -O "${#host_pids[@]}" host_pids < <(ip netns pids "$(sed -n 's/^host_netns=//p' "$host_env")")
done
control_pids=()
for name in etcd kube-apiserver kube-controller-manager; do control_pids+=("$(cat "$dir/cluster/pids/$name.pid")"); done
read -r total_before idle_before < <(cpu_ticks)
hosts_before=$(process_ticks "${host_pids[@]}")
control_before=$(process_ticks "${control_pids[@]}")
sleep 10
read -r total_after idle_after < <(cpu_ticks)
hosts_after=$(process_ticks "${host_pids[@]}")
control_after=$(process_ticks "${control_pids[@]}")
cpu_busy=$(awk -v t=$((total_after - total_before)) -v i=$((idle_after - idle_before)) 'BEGIN { printf "%.0f", t == 0 ? 0 : 100 * (t - i) / t }')
# Percent of one core: ticks are 1/100 s (USER_HZ), over 10 s.
cpu_hosts=$(((hosts_after - hosts_before) / 10))
cpu_control=$(((control_after - control_before) / 10))
ready=$(KUBECONFIG=$dir/cluster/admin.kubeconfig "$bin_dir/kubectl" get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l)

kubelet_total=0 sshd_total=0 shim_total=0 hosts_measured=0
for host_env in "$dir"/cluster/hosts/*/host.env; do
  netns=$(sed -n 's/^host_netns=//p' "$host_env")
  kubelet_total=$((kubelet_total + $(host_rss_kib "$netns" '^kubelet$')))
  sshd_total=$((sshd_total + $(host_rss_kib "$netns" '^sshd$')))
  shim_total=$((shim_total + $(host_rss_kib "$netns" '^node$')))
  hosts_measured=$((hosts_measured + 1))
done
control_plane=0
for name in etcd kube-apiserver kube-controller-manager; do
  control_plane=$((control_plane + $(rss_kib "$(cat "$dir/cluster/pids/$name.pid")")))
done
per_host() { awk -v total="$1" -v n="$hosts_measured" 'BEGIN { printf "%.0f", n == 0 ? 0 : total / n / 1024 }'; }
load=$(cut -d' ' -f1-3 /proc/loadavg)
limit_note="At this size neither memory nor the cluster's own CPU use is near the machine's limits."
if ((cpu_hosts + cpu_control >= 150)); then
  limit_note="CPU, not memory, limits the host count: $many_hosts idle hosts and the control plane use $((cpu_hosts + cpu_control)) % of one core out of 200 %."
fi

section=$(
  cat <<SECTION
## Test cluster

Command: \`sudo test/cluster/measure.sh --hosts $many_hosts --write\` (\`test/cluster/measure.sh\`), run on $(date -u +%Y-%m-%d). Kubernetes and etcd versions: $(sed -n '1,2p' "$bin_dir/BUILD-INFO" 2>/dev/null | paste -sd, - | sed 's/,/, /').

| figure | value |
| --- | ---: |
| control plane start, binaries linked into an empty cache (Go caches warm), no hosts | $cold |
| control plane start, cached binaries, no hosts | $cached s |
| \`cluster add-host\`: namespaces, sshd, kubeadm-style join until the Node is Ready | $join s |
| \`cluster up --hosts $many_hosts\` ($many_status) | $many s |
| Nodes Ready out of $many_hosts | $ready |
| RSS per host: test kubelet | $(per_host "$kubelet_total") MiB |
| RSS per host: sshd listener | $(per_host "$sshd_total") MiB |
| RSS per host: systemctl shim supervisor (Node.js) | $(per_host "$shim_total") MiB |
| RSS of etcd, kube-apiserver and kube-controller-manager together | $(mib "$control_plane") MiB |
| MemAvailable drop while $many_hosts hosts run | $(mib $((available_before - available_after))) MiB |
| CPU of the $many_hosts hosts' processes over 10 s while idle (percent of one core) | $cpu_hosts % |
| CPU of the control plane over the same 10 s (percent of one core) | $cpu_control % |
| machine CPU busy (both cores, all work on the machine) over the same 10 s | $cpu_busy % |
| hosts that fit in the memory available before the run (estimate: that MemAvailable divided by the drop per host) | $(awk -v before="$available_before" -v drop=$((available_before - available_after)) -v n="$many_hosts" 'BEGIN { printf "%d", drop <= 0 ? 0 : before / (drop / n) }') |
| load average (1, 5, 15 min) right after | $load |

"Control plane start" is \`cluster up --hosts 0\`: PKI, etcd, kube-apiserver ready, kube-controller-manager healthy, bootstrap RBAC and token. RSS is VmRSS from /proc after the hosts have run 30 s. It counts the pages of the shared kubelet and Node.js binaries once per process, so the MemAvailable drop is the better measure of cost. That drop also counts page cache and kernel memory, and other work on the machine moves it. A cluster's /24 limits it to 244 hosts. $limit_note

Machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) memory, Linux $(uname -r), Node.js $(node --version).
SECTION
)

printf '%s\n' "$section"
if [[ $write == yes ]]; then
  doc="$repo_root/docs/benchmarks.md"
  [[ -f $doc ]] || printf '# Benchmarks\n' >"$doc"
  # Replace the section from its heading up to the next "## " heading.
  awk -v section="$section" '
    /^## Test cluster$/ { print section; skipping = 1; done = 1; next }
    skipping && /^## / { skipping = 0; print "" }
    !skipping { print }
    END { if (!done) print "\n" section }
  ' "$doc" >"$doc.new"
  mv "$doc.new" "$doc"
  log "wrote the Test cluster section of $doc"
fi
