# The cluster's PKI, made with the openssl command line: cluster CA, API
# server serving certificate, service-account key pair and client
# certificates, plus kubeconfig files. Sourced, not run.

# Issues a certificate signed by the cluster CA.
issue_cert() { # name, subject, extensions (openssl config lines)
  local name=$1 subject=$2 extensions=$3 pki=$cluster_dir/pki
  openssl genrsa -out "$pki/$name.key" 2048 2>/dev/null
  chmod 600 "$pki/$name.key"
  openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "$extensions" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

make_pki() { # API server address
  local address=$1 pki=$cluster_dir/pki
  mkdir -p "$pki"
  chmod 700 "$pki"

  openssl genrsa -out "$pki/ca.key" 2048 2>/dev/null
  chmod 600 "$pki/ca.key"
  openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=kubernetes" -days 3650 -sha256 \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign' \
    -out "$pki/ca.crt" 2>/dev/null

  local client='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'
  # 10.96.0.1 is the first address of the service range, which the API
  # server gives the kubernetes.default Service.
  issue_cert apiserver "/CN=kube-apiserver" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$address,IP:127.0.0.1,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
  issue_cert admin "/O=system:masters/CN=kubernetes-admin" "$client"
  issue_cert controller-manager "/CN=system:kube-controller-manager" "$client"
  issue_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"

  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  chmod 600 "$pki/sa.key"
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# Writes a kubeconfig with an embedded client certificate and key (mode 0600).
write_cert_kubeconfig() { # path, user name, cert base name
  local path=$1 user=$2 name=$3 pki=$cluster_dir/pki
  (
    umask 077
    cat >"$path" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: $cluster_id
  cluster:
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
    server: https://$api_address:6443
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$pki/$name.crt")
    client-key-data: $(base64 -w0 <"$pki/$name.key")
contexts:
- name: $user@$cluster_id
  context:
    cluster: $cluster_id
    user: $user
current-context: $user@$cluster_id
KUBECONFIG
  )
}

# Writes a bootstrap kubeconfig as kubeadm join does (mode 0600).
write_bootstrap_kubeconfig() { # path, token
  local path=$1 token=$2
  (
    umask 077
    cat >"$path" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: kubernetes
  cluster:
    certificate-authority-data: $(base64 -w0 <"$cluster_dir/pki/ca.crt")
    server: https://$api_address:6443
users:
- name: tls-bootstrap-token-user
  user:
    token: $token
contexts:
- name: tls-bootstrap-token-user@kubernetes
  context:
    cluster: kubernetes
    user: tls-bootstrap-token-user
current-context: tls-bootstrap-token-user@kubernetes
KUBECONFIG
  )
}
