# Joins a host as `kubeadm join` does: writes the kubelet unit, the
# 10-kubeadm.conf drop-in, kubeadm-flags.env, /etc/default/kubelet, the
# KubeletConfiguration and a bootstrap kubeconfig, starts the kubelet, waits
# for its client certificate and a Ready Node, then removes the bootstrap
# kubeconfig. Sourced, not run.

# Mirrors the kubelet.service of the Kubernetes deb and rpm packages.
write_kubelet_unit() { # host fs folder
  cat >"$1/usr/lib/systemd/system/kubelet.service" <<'UNIT'
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
UNIT
  # The drop-in that the kubeadm package installs; kubeadm join fills the
  # two environment files it reads.
  cat >"$1/etc/systemd/system/kubelet.service.d/10-kubeadm.conf" <<'UNIT'
# Kubelet settings for nodes set up by kubeadm.
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# Written by "kubeadm init" and "kubeadm join": sets KUBELET_KUBEADM_ARGS.
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# Left to the administrator for extra flags: sets KUBELET_EXTRA_ARGS.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
UNIT
}

# The KubeletConfiguration kubeadm writes, with kubeadm's defaults, plus
# failCgroupV1: false, because the machine running the test cluster may use
# cgroup v1, on which kubelet v1.35 and later refuse to start by default.
write_kubelet_config() { # host fs folder
  cat >"$1/var/lib/kubelet/config.yaml" <<'CONFIG'
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerRuntimeEndpoint: ""
cpuManagerReconcilePeriod: 0s
evictionPressureTransitionPeriod: 0s
failCgroupV1: false
fileCheckFrequency: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
httpCheckFrequency: 0s
imageMinimumGCAge: 0s
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
  verbosity: 0
memorySwap: {}
nodeStatusReportFrequency: 0s
nodeStatusUpdateFrequency: 0s
resolvConf: /etc/resolv.conf
rotateCertificates: true
runtimeRequestTimeout: 0s
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
staticPodPath: /etc/kubernetes/manifests
streamingConnectionIdleTimeout: 0s
syncFrequency: 0s
volumeStatsAggPeriod: 0s
CONFIG
}

write_join_files() { # name, token
  local name=$1 token=$2 fs address
  fs=$(host_dir "$name")/fs
  address=$(sed -n 's/^host_address=//p' "$(host_dir "$name")/host.env")
  write_kubelet_unit "$fs"
  write_kubelet_config "$fs"
  cp "$cluster_dir/pki/ca.crt" "$fs/etc/kubernetes/pki/ca.crt"
  # --node-ip: the test host has one address; kubeadm writes only the runtime
  # flags here, and an administrator would add --node-ip to /etc/default/kubelet.
  printf 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10"\n' \
    >"$fs/var/lib/kubelet/kubeadm-flags.env"
  printf 'KUBELET_EXTRA_ARGS="--node-ip=%s"\n' "$address" >"$fs/etc/default/kubelet"
  write_bootstrap_kubeconfig "$fs/etc/kubernetes/bootstrap-kubelet.conf" "$token"
}

node_ready() { # node name
  kube_request GET "/api/v1/nodes/$1" 2>/dev/null |
    jq -e '.status.conditions[]? | select(.type == "Ready" and .status == "True")' >/dev/null
}

start_join() { # name
  local name=$1
  write_join_files "$name" "$(cat "$cluster_dir/pki/bootstrap-token")"
  host_exec "$name" systemctl daemon-reload
  host_exec "$name" systemctl enable kubelet 2>/dev/null
  host_exec "$name" systemctl start kubelet
}

# Waits for the TLS bootstrap to finish and the Node to be Ready.
finish_join() { # name, timeout seconds
  local name=$1 timeout=$2 fs
  fs=$(host_dir "$name")/fs
  if ! wait_for "the kubelet on $name to write /etc/kubernetes/kubelet.conf" "$timeout" test -s "$fs/etc/kubernetes/kubelet.conf" ||
    ! wait_for "Node $name to be Ready" "$timeout" node_ready "$name"; then
    log "last kubelet log lines on $name:"
    host_exec "$name" journalctl -u kubelet -n 25 --no-pager >&2 || true
    return 1
  fi
  rm -f "$fs/etc/kubernetes/bootstrap-kubelet.conf"
}
