#!/usr/bin/env bash
# Installs everything kube-node-rename and its test cluster need on a fresh machine, and is
# quick when nothing is missing: Debian packages for the simulated hosts, the npm packages,
# the TypeScript build, and the cached Go build of etcd, kube-apiserver,
# kube-controller-manager and the test kubelet (see test/cluster/build.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

say() { printf 'setup: %s\n' "$*" >&2; }

command -v node >/dev/null 2>&1 || { say "node not found; install Node.js 20 or newer"; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || { say "Node.js $(node --version) is too old; install Node.js 20 or newer"; exit 1; }

say "installing Debian packages the test hosts need (when missing)"
test/cluster/cluster install

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund >&2
fi
say "building the TypeScript sources"
npm run --silent build >&2

say "building the test cluster binaries (cached after the first build)"
bin_dir=$(bash test/cluster/build.sh)
say "test cluster binaries in $bin_dir"
