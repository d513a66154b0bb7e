# Starts etcd, kube-apiserver and kube-controller-manager in the machine's
# namespaces, listening only on the cluster's bridge address, and creates the
# objects kubeadm init creates for node bootstrap. Sourced, not run.

# Starts a process detached from this shell, logging to logs/<name>.log.
start_daemon() { # name, command...
  local name=$1
  shift
  mkdir -p "$cluster_dir/logs" "$cluster_dir/pids"
  setsid "$@" >>"$cluster_dir/logs/$name.log" 2>&1 </dev/null &
  printf '%s\n' "$!" >"$cluster_dir/pids/$name.pid"
}

daemon_pid() { cat "$cluster_dir/pids/$1.pid" 2>/dev/null || true; }

# Fails with the log's last lines when the process has exited.
check_daemon() { # name
  pid_alive "$(daemon_pid "$1")" && return 0
  log "$1 exited; last lines of $cluster_dir/logs/$1.log:"
  tail -n 20 "$cluster_dir/logs/$1.log" >&2 || true
  return 1
}

api_ready() {
  curl -sf --max-time 5 --cacert "$cluster_dir/pki/ca.crt" --cert "$cluster_dir/pki/admin.crt" \
    --key "$cluster_dir/pki/admin.key" "https://$api_address:6443/readyz" >/dev/null
}

wait_daemon() { # name, description, timeout seconds, probe command...
  local name=$1 description=$2 timeout=$3 deadline
  shift 3
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    check_daemon "$name" || fail "$name did not start"
    ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for $description; see $cluster_dir/logs/$name.log"
    sleep 0.5
  done
}

start_etcd() {
  # Plain HTTP on the bridge address: only this machine and the cluster's
  # hosts reach it. --unsafe-no-fsync trades durability, which a throwaway
  # test cluster does not need, for start-up and write speed.
  start_daemon etcd "$bin_dir/etcd" --name default --data-dir "$cluster_dir/etcd" \
    --listen-client-urls "http://$api_address:2379" --advertise-client-urls "http://$api_address:2379" \
    --listen-peer-urls "http://$api_address:2380" --initial-advertise-peer-urls "http://$api_address:2380" \
    --initial-cluster "default=http://$api_address:2380" --unsafe-no-fsync
  wait_daemon etcd "etcd on $api_address:2379" 60 curl -sf --max-time 2 "http://$api_address:2379/health"
}

# Audit policy: metadata, including the response status and its message,
# of every create of a Node or a CertificateSigningRequest, so that tests can
# read the API server's own reason for refusing one.
write_audit_policy() {
  cat >"$cluster_dir/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create]
  resources:
  - group: ""
    resources: [nodes]
  - group: certificates.k8s.io
    resources: [certificatesigningrequests]
- level: None
POLICY
}

start_apiserver() {
  local pki=$cluster_dir/pki
  write_audit_policy
  # The secure port listens on the bridge address only: kube-apiserver takes
  # one --bind-address, and a loopback port would clash between two clusters.
  start_daemon kube-apiserver "$bin_dir/kube-apiserver" \
    --advertise-address "$api_address" --bind-address "$api_address" --secure-port 6443 \
    --etcd-servers "http://$api_address:2379" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --enable-bootstrap-token-auth \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --allow-privileged \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/12 \
    --audit-policy-file "$cluster_dir/audit-policy.yaml" --audit-log-path "$cluster_dir/logs/kube-apiserver-audit.log" \
    --profiling=false ${apiserver_feature_gates:+--feature-gates "$apiserver_feature_gates"}
  wait_daemon kube-apiserver "kube-apiserver to report ready on https://$api_address:6443/readyz" 120 api_ready
}

start_controller_manager() {
  local pki=$cluster_dir/pki config=$cluster_dir/controller-manager.kubeconfig
  write_cert_kubeconfig "$config" system:kube-controller-manager controller-manager
  # Test timings: node-monitor-period 2s and node-monitor-grace-period 20s
  # (defaults 5s and 50s) mark a stopped kubelet's Node NotReady within about
  # 20 s. Pod garbage collection of pods bound to a deleted Node has fixed
  # timings in the controller (checks every 20 s, 40 s quarantine), so it
  # takes up to about a minute. terminated-pod-gc-threshold 100 (default
  # 12500) keeps few finished pods around.
  start_daemon kube-controller-manager "$bin_dir/kube-controller-manager" \
    --kubeconfig "$config" --authentication-kubeconfig "$config" --authorization-kubeconfig "$config" \
    --bind-address "$api_address" \
    --controllers '*,bootstrapsigner,tokencleaner' \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key" \
    --use-service-account-credentials \
    --allocate-node-cidrs --cluster-cidr 10.244.0.0/16 --service-cluster-ip-range 10.96.0.0/12 \
    --node-monitor-period 2s --node-monitor-grace-period 20s \
    --terminated-pod-gc-threshold 100 \
    --leader-elect=false --profiling=false
  wait_daemon kube-controller-manager "kube-controller-manager to serve https://$api_address:10257/healthz" 60 \
    curl -sfk --max-time 2 "https://$api_address:10257/healthz"
}

cluster_role_binding() { # name, cluster role, subject kind, subject name
  kube_create /apis/rbac.authorization.k8s.io/v1/clusterrolebindings "$(jq -n \
    --arg name "$1" --arg role "$2" --arg kind "$3" --arg subject "$4" '{
      apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding",
      metadata: {name: $name},
      roleRef: {apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: $role},
      subjects: [{apiGroup: "rbac.authorization.k8s.io", kind: $kind, name: $subject}]}')"
}

# Creates a bootstrap token Secret and prints the token (id.secret).
create_bootstrap_token() { # lifetime in seconds
  local id secret expiration
  id=$(random_lowercase 6)
  secret=$(random_lowercase 16)
  expiration=$(date -u -d "+$1 seconds" +%Y-%m-%dT%H:%M:%SZ)
  kube_create /api/v1/namespaces/kube-system/secrets "$(jq -n --arg id "$id" --arg secret "$secret" --arg expiration "$expiration" '{
    apiVersion: "v1", kind: "Secret", type: "bootstrap.kubernetes.io/token",
    metadata: {name: ("bootstrap-token-" + $id), namespace: "kube-system"},
    stringData: {"token-id": $id, "token-secret": $secret, expiration: $expiration,
      description: "kube-node-rename test cluster join token",
      "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
      "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token"}}')" >/dev/null ||
    fail "could not create the bootstrap token Secret"
  printf '%s.%s\n' "$id" "$secret"
}

# The objects kubeadm init creates for TLS bootstrap of joining kubelets.
create_bootstrap_objects() {
  local bootstrappers=system:bootstrappers:kubeadm:default-node-token
  wait_for "namespace kube-system" 60 kube_request GET /api/v1/namespaces/kube-system ||
    fail "the API server did not create namespace kube-system"
  cluster_role_binding kubeadm:kubelet-bootstrap system:node-bootstrapper Group "$bootstrappers"
  cluster_role_binding kubeadm:node-autoapprove-bootstrap \
    system:certificates.k8s.io:certificatesigningrequests:nodeclient Group "$bootstrappers"
  cluster_role_binding kubeadm:node-autoapprove-certificate-rotation \
    system:certificates.k8s.io:certificatesigningrequests:selfnodeclient Group system:nodes
  kube_create /apis/rbac.authorization.k8s.io/v1/clusterroles '{
    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
    "metadata": {"name": "kubeadm:get-nodes"},
    "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}'
  cluster_role_binding kubeadm:get-nodes kubeadm:get-nodes Group "$bootstrappers"
}

start_control_plane() {
  start_etcd
  log "etcd is up"
  start_apiserver
  log "kube-apiserver is ready on https://$api_address:6443"
  start_controller_manager
  log "kube-controller-manager is up"
  create_bootstrap_objects
  write_cert_kubeconfig "$cluster_dir/admin.kubeconfig" kubernetes-admin admin
  if [[ ! -s $cluster_dir/pki/bootstrap-token ]]; then
    (
      umask 077
      create_bootstrap_token 86400 >"$cluster_dir/pki/bootstrap-token"
    )
  fi
}

stop_control_plane() {
  local name pid
  for name in kube-controller-manager kube-apiserver etcd; do
    pid=$(daemon_pid "$name")
    if pid_matches "$pid" "$cluster_dir"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.2; done
      pid_alive "$pid" && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$cluster_dir/pids/$name.pid"
  done
}
