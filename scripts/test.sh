#!/usr/bin/env bash
# Runs every test: unit tests, the test cluster's fidelity tests and the end-to-end tests on
# real test clusters. Sets up what is missing first (see scripts/setup.sh). Run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

bash scripts/setup.sh
npx mocha 'dist/test/**/*.test.js'
