#!/usr/bin/env bash
# Runs every test: unit tests, the test cluster's fidelity tests and the end-to-end tests on
# real test clusters. Sets up what is missing first (see scripts/setup.sh). Run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

bash scripts/setup.sh
output=$(mktemp)
trap 'rm -f "$output"' EXIT
status=0
npx mocha 'dist/test/**/*.test.js' 2>&1 | tee "$output" || status=$?
# One closing line in the plain "N passed, N failed" form, from mocha's own counts.
passed=$(sed -n 's/^ *\([0-9][0-9]*\) passing.*/\1/p' "$output" | tail -n 1)
failed=$(sed -n 's/^ *\([0-9][0-9]*\) failing.*/\1/p' "$output" | tail -n 1)
printf '%s passed, %s failed\n' "${passed:-0}" "${failed:-0}"
exit "$status"
