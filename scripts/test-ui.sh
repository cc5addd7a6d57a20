#!/usr/bin/env bash
# The web UI's checks: the vendored libraries equal their npm packages, then the browser suite
# (tests/browser: Debian's chromium driven by playwright-core against the real botnest binary).
#
# Usage: ./scripts/test-ui.sh
#
# Needs node and npm (the npm registry for `npm ci`) and /usr/bin/chromium (Debian package
# chromium, which ./scripts/test.sh installs as root). Without chromium the suite skips with a
# note, except with CI=true, where it fails. Screenshots and render timings are written to
# target/browser-artifacts/.

set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

status=0

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "error: node and npm are needed for the UI checks" >&2
    exit 1
fi

# Installs the pinned packages (npm ci) and compares the vendored files with them.
./scripts/vendor-ui.sh --check || status=1

if ! cargo build -q -p botnest; then
    echo "error: cargo build -p botnest failed" >&2
    exit 1
fi

export BOTNEST_BIN="${BOTNEST_BIN:-$PWD/target/debug/botnest}"
(cd tests/browser && node --test --test-concurrency=1 --test-timeout=600000 --test-reporter=spec ui.test.js) || status=1

exit $status
