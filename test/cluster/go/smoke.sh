#!/usr/bin/env bash
# Check the binaries of build.sh by hand: start etcd, kube-apiserver and
# kube-controller-manager with a throwaway PKI, then one test kubelet, and
# check the kubelet's identity behaviour:
#   1. TLS bootstrap, rotation off: a CSR appears, is approved with kubectl,
#      and the Node registers and becomes Ready.
#   2. A new --hostname-override with the old client certificate kept and
#      rotation off: the kubelet fails to register the new Node, and the
#      API server rejects a create of that Node with NodeRestriction's error.
#   3. The same with rotation on: the kubelet requests a certificate for the
#      new name, authenticated as the old node, and NodeRestriction rejects
#      that CSR, so none is stored.
#   4. The manual rename (fresh bootstrap kubeconfig, client certificate and
#      kubeconfig removed, rotation off): the new Node registers and becomes
#      Ready. The fake runtime's containers survive each restart, and the
#      kubelet stops the container of a pod bound to the old name.
#
# Usage: smoke.sh [BIN_DIR]   (default: the folder that build.sh prints)
# Runs as root inside a new network namespace, so every address it uses is
# its own loopback or a veth pair in that namespace. Work files go to
# a fresh /tmp/knr-smoke.* folder, kept when a check fails.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z ${KNR_SMOKE_IN_NAMESPACE:-} ]]; then
  [[ $(id -u) == 0 ]] || { echo "smoke.sh: run as root: it creates a network namespace" >&2; exit 1; }
  bin=${1:-$(bash "$script_dir/../build.sh")}
  exec unshare --net env KNR_SMOKE_IN_NAMESPACE=1 bash "${BASH_SOURCE[0]}" "$bin"
fi

bin=$(cd "$1" && pwd)
node_ip=10.250.0.1
ip link set lo up
ip link add knr-smoke0 type veth peer name knr-smoke1
ip link set knr-smoke1 up
ip addr add "$node_ip/24" dev knr-smoke0
ip link set knr-smoke0 up

work=$(mktemp -d /tmp/knr-smoke.XXXXXX)
pki="$work/pki"
mkdir -p "$pki" "$work/logs"
pids=()
passed=0
cleanup() {
  local status=$?
  local i
  # Stop in reverse start order, so kube-apiserver stops before etcd. Give
  # each process 10 s after SIGTERM, then SIGKILL it.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || continue
    timeout 10 tail --pid "${pids[i]}" -f /dev/null || kill -KILL "${pids[i]}" 2>/dev/null || true
  done
  if ((status == 0)); then
    rm -rf "$work"
  else
    echo "smoke.sh: FAILED; logs kept in $work/logs" >&2
  fi
}
trap cleanup EXIT

say() { printf 'smoke.sh: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
pass() { passed=$((passed + 1)); say "ok $passed - $*"; }

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND once a second.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after $limit s waiting for $what"
    sleep 1
  done
}

kubectl() { "$bin/kubectl" --kubeconfig "$work/admin.conf" "$@"; }

# --- PKI ------------------------------------------------------------------
say "generating a throwaway PKI in $pki"
openssl_quiet() { openssl "$@" 2>>"$work/logs/openssl.log"; }
openssl_quiet req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=kubernetes \
  -keyout "$pki/ca.key" -out "$pki/ca.crt"
# sign NAME SUBJECT [EXTENSIONS]: a key and a certificate signed by the CA.
sign() {
  local name=$1 subject=$2 extensions=${3:-}
  openssl_quiet req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$pki/$name.key" -out "$pki/$name.csr"
  if [[ -n $extensions ]]; then
    printf '%s\n' "$extensions" >"$pki/$name.ext"
    openssl_quiet x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -days 1 -extfile "$pki/$name.ext" -out "$pki/$name.crt"
  else
    openssl_quiet x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -days 1 -out "$pki/$name.crt"
  fi
}
sign apiserver /CN=kube-apiserver \
  "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
sign admin "/O=system:masters/CN=kubernetes-admin" "extendedKeyUsage=clientAuth"
sign controller-manager /CN=system:kube-controller-manager "extendedKeyUsage=clientAuth"
openssl_quiet genrsa -out "$pki/sa.key" 2048
openssl_quiet rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
chmod 600 "$pki"/*.key

# kubeconfig FILE USER CREDENTIALS: a kubeconfig of mode 0600 for the API
# server, where CREDENTIALS is the user's entry as a YAML flow mapping.
kubeconfig() {
  (umask 077 && cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: smoke
  cluster: {server: https://127.0.0.1:6443, certificate-authority: $pki/ca.crt}
users:
- name: $2
  user: $3
contexts:
- name: smoke
  context: {cluster: smoke, user: $2}
current-context: smoke
EOF
  )
}
client_certificate() { echo "{client-certificate: $pki/$1.crt, client-key: $pki/$1.key}"; }
kubeconfig "$work/admin.conf" kubernetes-admin "$(client_certificate admin)"
kubeconfig "$work/controller-manager.conf" system:kube-controller-manager "$(client_certificate controller-manager)"

# --- control plane --------------------------------------------------------
say "starting etcd"
"$bin/etcd" --name smoke --data-dir "$work/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster smoke=http://127.0.0.1:2380 >"$work/logs/etcd.log" 2>&1 &
pids+=($!)

say "starting kube-apiserver"
"$bin/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port 6443 \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range 10.96.0.0/12 \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --enable-bootstrap-token-auth >"$work/logs/kube-apiserver.log" 2>&1 &
pids+=($!)
wait_for 120 "kube-apiserver to be ready" kubectl get --raw /readyz
pass "kube-apiserver $(kubectl version -o json | jq -r .serverVersion.gitVersion) is ready"

say "starting kube-controller-manager"
"$bin/kube-controller-manager" --kubeconfig "$work/controller-manager.conf" \
  --authentication-kubeconfig "$work/controller-manager.conf" --authorization-kubeconfig "$work/controller-manager.conf" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
  --controllers '*,bootstrapsigner,tokencleaner' \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key" \
  >"$work/logs/kube-controller-manager.log" 2>&1 &
pids+=($!)

# The bindings kubeadm creates, except auto-approval of new node client
# certificates, so that check 1 approves by hand.
kubectl create clusterrolebinding kubeadm:kubelet-bootstrap \
  --clusterrole system:node-bootstrapper --group system:bootstrappers:kubeadm:default-node-token >/dev/null
kubectl create clusterrolebinding kubeadm:node-autoapprove-certificate-rotation \
  --clusterrole system:certificates.k8s.io:certificatesigningrequests:selfnodeclient --group system:nodes >/dev/null

# Hex digits fit the token's [a-z0-9] alphabet.
token_id=$(openssl rand -hex 3)
token_secret=$(openssl rand -hex 8)
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata: {name: bootstrap-token-$token_id, namespace: kube-system}
type: bootstrap.kubernetes.io/token
stringData:
  token-id: "$token_id"
  token-secret: "$token_secret"
  usage-bootstrap-authentication: "true"
  auth-extra-groups: system:bootstrappers:kubeadm:default-node-token
EOF

# --- kubelet --------------------------------------------------------------
host="$work/host"
mkdir -p "$host/etc" "$host/lib/pki" "$host/manifests"
kubeconfig "$host/etc/bootstrap-kubelet.conf" tls-bootstrap-token-user "{token: $token_id.$token_secret}"
cat >"$host/lib/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: systemd
clusterDNS: [10.96.0.10]
clusterDomain: cluster.local
rotateCertificates: false
staticPodPath: $host/manifests
containerRuntimeEndpoint: unix://$host/run/containerd/containerd.sock
EOF

kubelet_pid=""
# start_kubelet NODE_NAME LOG_NAME EXTRA_FLAGS...
start_kubelet() {
  local name=$1 log=$2
  shift 2
  "$bin/kubelet" --bootstrap-kubeconfig "$host/etc/bootstrap-kubelet.conf" --kubeconfig "$host/etc/kubelet.conf" \
    --config "$host/lib/config.yaml" --root-dir "$host/lib" --cert-dir "$host/lib/pki" \
    --hostname-override "$name" --node-ip "$node_ip" \
    --pod-infra-container-image registry.k8s.io/pause:3.10 --v 2 "$@" >"$work/logs/$log" 2>&1 &
  kubelet_pid=$!
  pids+=("$kubelet_pid")
}
stop_kubelet() {
  kill "$kubelet_pid"
  wait "$kubelet_pid" 2>/dev/null || true
}

node_ready() {
  [[ $(kubectl get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}
# running_containers POD: print how many containers of POD the fake runtime
# of the host has in state CONTAINER_RUNNING, from its state file.
runtime_state="$host/run/containerd/containerd.sock.state.json"
running_containers() {
  jq --arg pod "$1" '[.containers[].status
    | select(.labels["io.kubernetes.pod.name"] == $pod and .state == "CONTAINER_RUNNING")] | length' "$runtime_state"
}
no_running_containers() { [[ $(running_containers "$1") == 0 ]]; }
some_running_containers() { [[ $(running_containers "$1") -gt 0 ]]; }

# csr_for NODE: print the name of a kubelet client CSR for system:node:NODE.
csr_for() {
  local name request
  kubectl get csr -o json |
    jq -r '.items[] | select(.spec.signerName == "kubernetes.io/kube-apiserver-client-kubelet")
      | .metadata.name + " " + .spec.request' |
    while read -r name request; do
      if base64 -d <<<"$request" | openssl req -noout -subject 2>/dev/null | grep -q "CN *= *system:node:$1\$"; then
        echo "$name"
        return 0
      fi
    done | grep .
}

# Check 1: bootstrap with rotation off, manual approval.
say "check 1: starting the kubelet as node-a with a bootstrap kubeconfig, rotation off"
start_kubelet node-a kubelet-node-a.log
wait_for 60 "a kubelet client CSR from the bootstrap token" csr_for node-a
csr=$(csr_for node-a)
[[ $(kubectl get csr "$csr" -o jsonpath='{.spec.username}') == "system:bootstrap:$token_id" ]] ||
  fail "CSR $csr was not requested by the bootstrap token user system:bootstrap:$token_id"
kubectl certificate approve "$csr" >/dev/null
wait_for 60 "node-a to be Ready" node_ready node-a
[[ -L $host/lib/pki/kubelet-client-current.pem ]] || fail "$host/lib/pki/kubelet-client-current.pem is not a symlink"
grep -q "client-certificate: $host/lib/pki/kubelet-client-current.pem" "$host/etc/kubelet.conf" ||
  fail "$host/etc/kubelet.conf does not point at kubelet-client-current.pem"
subject=$(openssl x509 -noout -subject -in "$host/lib/pki/kubelet-client-current.pem")
[[ $subject == *"CN = system:node:node-a"* ]] || fail "unexpected client certificate subject: $subject"
wait_for 30 "the Lease of node-a" kubectl -n kube-node-lease get lease node-a
pass "node-a bootstrapped through CSR $csr, registered, is Ready and renews its Lease"
rm "$host/etc/bootstrap-kubelet.conf"

# A bare pod bound to node-a, whose container must stop once the kubelet runs
# under another name. Without a scheduler, spec.nodeName binds it directly.
wait_for 60 "the default ServiceAccount" kubectl get serviceaccount default
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: bound-to-node-a, namespace: default}
spec:
  nodeName: node-a
  automountServiceAccountToken: false
  containers: [{name: pause, image: registry.k8s.io/pause:3.10}]
EOF
wait_for 60 "pod bound-to-node-a to be Running" \
  test "$(kubectl get pod bound-to-node-a -o jsonpath='{.status.phase}')" = Running
wait_for 10 "the fake runtime to save the running container" some_running_containers bound-to-node-a
pass "pod bound-to-node-a runs on node-a, and the fake runtime state file records its running container"

# Check 2: new name, old certificate, rotation off.
stop_kubelet
# Kubelet v1.36 does not log the rejected create: after a Forbidden create
# it tries to read the Node, and logs the Node authorizer's rejection of
# that read.
read_error="node 'node-a' cannot read 'node-b', only its own Node object"
restriction_error='node "node-a" is not allowed to modify node "node-b"'
say "check 2: restarting as node-b with the node-a certificate, rotation off"
start_kubelet node-b kubelet-node-b-norotate.log
wait_for 60 "the kubelet to report that node-a may not read node-b" \
  grep -qF "$read_error" "$work/logs/kubelet-node-b-norotate.log"
grep -Eq '"Loaded the fake runtime state".* containers=[1-9]' "$work/logs/kubelet-node-b-norotate.log" ||
  fail "the restarted kubelet did not load the running container of pod bound-to-node-a from the fake runtime state"
if kubectl get node node-b >/dev/null 2>&1; then fail "node-b registered although the certificate is for node-a"; fi
grep -q '"Attempting to register node" node="node-b"' "$work/logs/kubelet-node-b-norotate.log" ||
  fail "the kubelet never tried to register node-b"
# The same create with the kubelet's own credentials shows NodeRestriction's error.
create_output=$("$bin/kubectl" --kubeconfig "$host/etc/kubelet.conf" create -f - 2>&1 <<EOF || true
apiVersion: v1
kind: Node
metadata: {name: node-b}
EOF
)
[[ $create_output == *"$restriction_error"* ]] ||
  fail "creating node-b as node-a should fail with NodeRestriction's error but printed: $create_output"
pass "node-b was not registered: the kubelet logged \"$read_error\", and NodeRestriction rejects the create with \"$restriction_error\""

# Check 3: new name, old certificate, rotation on.
stop_kubelet
say "check 3: restarting as node-b with the node-a certificate, rotation on"
start_kubelet node-b kubelet-node-b-rotate.log --rotate-certificates
# The certificate manager finds that the CN differs from the node name and
# requests a certificate for node-b at once, authenticated as node-a. Kubernetes
# v1.36's NodeRestriction admission rejects that CSR when it is created.
csr_error='can only create a node CSR with CN=system:node:node-a'
wait_for 60 "the kubelet to request a certificate for node-b" \
  grep -q '"Current certificate CN does not match requested CN".*currentName="system:node:node-a" requestedName="system:node:node-b"' \
  "$work/logs/kubelet-node-b-rotate.log"
wait_for 60 "the API server's response to the CSR for node-b" \
  grep -qF "$csr_error" "$work/logs/kubelet-node-b-rotate.log"
if csr=$(csr_for node-b); then fail "CSR $csr for node-b exists although NodeRestriction should reject it"; fi
if kubectl get node node-b >/dev/null 2>&1; then fail "node-b registered although the certificate is for node-a"; fi
pass "with rotation on the kubelet requested a certificate for node-b as node-a, and the API server rejected the CSR: \"$csr_error\""

# Check 4: the manual rename procedure, then the pod bound to node-a.
stop_kubelet
say "check 4: renaming by hand: fresh bootstrap kubeconfig, client certificate and kubeconfig removed, rotation off"
kubeconfig "$host/etc/bootstrap-kubelet.conf" tls-bootstrap-token-user "{token: $token_id.$token_secret}"
rm -f "$host/etc/kubelet.conf" "$host/lib/pki"/kubelet-client-*
start_kubelet node-b kubelet-node-b-renamed.log
wait_for 60 "a kubelet client CSR for node-b from the bootstrap token" csr_for node-b
csr=$(csr_for node-b)
kubectl certificate approve "$csr" >/dev/null
wait_for 60 "node-b to be Ready" node_ready node-b
subject=$(openssl x509 -noout -subject -in "$host/lib/pki/kubelet-client-current.pem")
[[ $subject == *"CN = system:node:node-b"* ]] || fail "unexpected client certificate subject after the rename: $subject"
wait_for 60 "the kubelet to stop the container of pod bound-to-node-a" no_running_containers bound-to-node-a
[[ $(kubectl get pod bound-to-node-a -o jsonpath='{.spec.nodeName}') == node-a ]] ||
  fail "pod bound-to-node-a should still be bound to node-a in the API"
pass "node-b registered and is Ready after the manual rename, and the container of the pod bound to node-a was stopped"

say "all $passed checks passed"
