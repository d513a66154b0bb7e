#!/usr/bin/env bash
# The demo: sets everything up, starts a test cluster of three kubeadm-like hosts, gives the
# nodes some labels and taints, and renames them with plans/demo.yaml, showing the Nodes before
# and after. Run as root (the test cluster uses network namespaces). Start over at any time by
# running it again; `test/cluster/cluster down --id demo` stops the cluster.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

bash scripts/setup.sh
kubectl=$(bash test/cluster/build.sh)/kubectl

step() { printf '\n==> %s\n' "$*"; }

step "starting a test cluster with three hosts"
test/cluster/cluster down --id demo --purge >/dev/null 2>&1 || true
rm -rf plans/.kube-node-rename/demo
eval "$(test/cluster/cluster up --id demo --hosts 3 | grep '^export ')"

step "labelling and tainting the nodes as an operator would have"
"$kubectl" label node node-1 node-2 node-3 topology.kubernetes.io/zone=rack-a team=payments >/dev/null
"$kubectl" label node node-1 node-role.kubernetes.io/ingress= >/dev/null
"$kubectl" taint node node-3 dedicated=batch:NoSchedule >/dev/null
"$kubectl" annotate node node-2 example.com/asset-tag=A-1002 >/dev/null

step "granting the tool the least-privilege ClusterRole of deploy/clusterrole.yaml"
node dist/test/e2e/tool-kubeconfig.js "$KUBECONFIG" test/cluster/.run/demo/kube-node-rename.kubeconfig

step "nodes before"
"$kubectl" get nodes -L topology.kubernetes.io/zone,team -o wide

step "kube-node-rename validate plans/demo.yaml"
node dist/engine/cli.js validate plans/demo.yaml

step "kube-node-rename graph plans/demo.yaml"
node dist/engine/cli.js graph plans/demo.yaml | head -n 20

step "kube-node-rename apply plans/demo.yaml"
node dist/engine/cli.js apply plans/demo.yaml --kubeconfig test/cluster/.run/demo/kube-node-rename.kubeconfig

step "kube-node-rename status plans/demo.yaml"
node dist/engine/cli.js status plans/demo.yaml

step "nodes after"
"$kubectl" get nodes -L topology.kubernetes.io/zone,team -o wide
"$kubectl" get nodes -o custom-columns='NAME:.metadata.name,PREVIOUS:.metadata.annotations.kube-node-rename\.io/previous-name,TAINTS:.spec.taints[*].key'

step "the same plan again changes nothing"
node dist/engine/cli.js apply plans/demo.yaml --kubeconfig test/cluster/.run/demo/kube-node-rename.kubeconfig

printf '\nThe demo cluster keeps running: export KUBECONFIG=%s to look around, and\n' "$KUBECONFIG"
printf 'run "test/cluster/cluster down --id demo" to stop it.\n'
