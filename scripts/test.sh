#!/usr/bin/env bash
# botnest's one test command: everything CI checks, in the order CI checks it.
#
# Usage: ./scripts/test.sh [--quick] [--no-install] [--help]
#
#   (no option)    As root on Debian, install what is missing (tshark, softflowd,
#                  openvswitch-switch, nfdump, ethtool, iproute2, tcpdump, chromium, the cloud
#                  testbed's servers and tools, cargo-nextest, the STIX validator from PyPI in a
#                  virtual environment under target/; a Rust toolchain through rustup when cargo
#                  itself is missing), then run every step:
#                  rustfmt check, clippy (-D warnings), rustdoc (-D warnings), the test suite
#                  (cargo nextest, then doctests) and the extra steps listed in EXTRA_STEPS below.
#   --quick        For development: install nothing, skip rustdoc, doctests, the conformance
#                  suite against ../shared/fixtures, the testbed's end-to-end run and the
#                  extra steps.
#   --no-install   Run every step but install nothing (for machines set up by hand).
#   -h, --help     Print this text.
#
# Environment:
#   CI=true             Set by CI (which runs `bash .ci/run`); turns colours off and makes suites
#                       that need an external tool fail instead of skipping.
#   BOTNEST_SHARED=DIR  Where the shared fixtures live (default: ../shared beside the checkout);
#                       the conformance suite skips with a note when they are absent.
#   BOTNEST_SKIP_CONFORMANCE=1  Skip the conformance suite (what --quick does).
#   BOTNEST_SKIP_TESTBED=1      Skip the cloud testbed's end-to-end run (what --quick does).
#
# Exit status: 0 when every step passed, 1 otherwise. Every step runs even after a failure, so
# one run lists all problems; a summary at the end names the failed steps.

set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

QUICK=0
INSTALL=1
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 INSTALL=0 ;;
        --no-install) INSTALL=0 ;;
        -h | --help)
            sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
            exit 0
            ;;
        *)
            echo "test.sh: unknown option '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

# A toolchain installed by rustup lives here; CI's environment may not have it on PATH.
CARGO_BIN="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$CARGO_BIN/cargo" ]]; then
    PATH="$CARGO_BIN:$PATH"
fi

if [[ "${CI:-}" == "true" ]]; then
    export CARGO_TERM_COLOR=never
    export NEXTEST_HIDE_PROGRESS_BAR=1
fi

# System packages the test suites drive (live exporters, captures, namespaces), as Debian names
# with the command whose presence shows each is installed.
APT_PACKAGES=(
    "tshark:tshark"
    "softflowd:softflowd"
    "openvswitch-switch:ovs-vswitchd"
    "nfdump:nfdump"
    "ethtool:ethtool"
    "iproute2:ip"
    "tcpdump:tcpdump"
    "rsyslog:rsyslogd"
    "chromium:chromium"
    # The cloud testbed (scripts/testbed.sh) and its end-to-end test.
    "nftables:nft"
    "python3:python3"
    "ngircd:ngircd"
    "dnsmasq-base:dnsmasq"
    "openssh-server:sshd"
    "curl:curl"
    "hping3:hping3"
    "hydra:hydra"
    "socat:socat"
)

# Steps that later parts of the project add: "label|script". Each runs when its script exists
# and is skipped with a note otherwise, so adding one here is safe before the script lands.
EXTRA_STEPS=(
    "bounded fuzz run|scripts/fuzz.sh"
    "web UI: vendored libraries and browser tests|scripts/test-ui.sh"
)

FAILED=()
STEP_START=0

section() {
    STEP_START=$SECONDS
    printf '\n==== %s ====\n' "$1"
}

# Runs one step; records a failure without stopping so the summary lists every broken step.
step() {
    local label=$1
    shift
    section "$label"
    echo "+ $*"
    if "$@"; then
        printf -- '---- %s: ok (%ds)\n' "$label" $((SECONDS - STEP_START))
    else
        printf -- '---- %s: FAILED (exit %d, %ds)\n' "$label" $? $((SECONDS - STEP_START))
        FAILED+=("$label")
    fi
}

have() { command -v "$1" >/dev/null 2>&1; }

# Installed means dpkg says so, or (off Debian) the command is on PATH.
package_present() {
    local pkg=$1 cmd=$2
    if have dpkg-query; then
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' && return 0
    fi
    have "$cmd" || [[ -x "/usr/sbin/$cmd" || -x "/sbin/$cmd" ]]
}

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif have sudo && sudo -n true 2>/dev/null; then
        sudo "$@"
    else
        return 126
    fi
}

APT_UPDATED=0
apt_install() {
    if ! have apt-get; then
        echo "error: apt-get not found; install these by hand: $*" >&2
        return 1
    fi
    if [[ $EUID -ne 0 ]] && ! { have sudo && sudo -n true 2>/dev/null; }; then
        echo "error: installing $* needs root (run as root or with passwordless sudo)" >&2
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [[ $APT_UPDATED -eq 0 ]]; then
        if ! as_root apt-get update -q; then
            echo "error: 'apt-get update' failed (network or sources.list problem?)" >&2
            return 1
        fi
        APT_UPDATED=1
    fi
    if ! as_root apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "$@" </dev/null; then
        echo "error: 'apt-get install $*' failed; see the apt output above" >&2
        return 1
    fi
}

install_system_packages() {
    local missing=() entry pkg cmd
    for entry in "${APT_PACKAGES[@]}"; do
        pkg=${entry%%:*}
        cmd=${entry#*:}
        package_present "$pkg" "$cmd" || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        echo "all present: ${APT_PACKAGES[*]%%:*}"
        return 0
    fi
    echo "missing: ${missing[*]}"
    if [[ " ${missing[*]} " == *" tshark "* ]] && have debconf-set-selections; then
        # tshark's install otherwise stops to ask whether non-root users may capture.
        echo "wireshark-common wireshark-common/install-setuid boolean false" |
            as_root debconf-set-selections
    fi
    apt_install "${missing[@]}"
}

install_rust() {
    if have cargo; then
        cargo --version
    else
        echo "cargo not found: installing the stable toolchain with rustup"
        local deps=()
        have curl || deps+=(curl ca-certificates)
        have cc || deps+=(gcc libc6-dev)
        if [[ ${#deps[@]} -gt 0 ]]; then apt_install "${deps[@]}" || return 1; fi
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
            sh -s -- -y --profile minimal --default-toolchain stable \
                --component rustfmt --component clippy || {
            echo "error: rustup install failed" >&2
            return 1
        }
        PATH="$CARGO_BIN:$PATH"
    fi
    if ! have cc; then apt_install gcc libc6-dev || return 1; fi
    local component
    for component in rustfmt clippy; do
        cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 && continue
        if ! { have rustup && rustup component add "$component"; }; then
            echo "error: cargo ${component/rustfmt/fmt} is missing" >&2
            return 1
        fi
    done
}

install_nextest() {
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest --version | head -n 1
        return 0
    fi
    echo "cargo-nextest not found: cargo install --locked cargo-nextest"
    cargo install --locked cargo-nextest ||
        echo "warning: cargo-nextest did not install; the suite falls back to cargo test" >&2
    return 0
}

# The official STIX 2.1 validator (PyPI stix2-validator) checks the STIX export in
# crates/botnest/tests/web.rs; it lives in a virtual environment under target/.
STIX_VENV=target/stix-validator
install_stix_validator() {
    if [[ -x "$STIX_VENV/bin/stix2_validator" ]]; then
        echo "present: $STIX_VENV/bin/stix2_validator"
        return 0
    fi
    have python3 || apt_install python3 || return 1
    if ! python3 -m venv "$STIX_VENV"; then
        # Debian keeps venv's pip bootstrap in its own package.
        rm -rf "$STIX_VENV"
        apt_install python3-venv && python3 -m venv "$STIX_VENV" || return 1
    fi
    "$STIX_VENV/bin/pip" install --quiet stix2-validator
}

run_tests() {
    if [[ -x "$STIX_VENV/bin/stix2_validator" ]]; then
        export BOTNEST_STIX_VALIDATOR="$PWD/$STIX_VENV/bin/stix2_validator"
    fi
    if [[ $QUICK -eq 1 ]]; then
        # The conformance suite reads every shared capture and runs tshark on each: slow.
        export BOTNEST_SKIP_CONFORMANCE=1
        # The testbed's end-to-end run takes about ten minutes.
        export BOTNEST_SKIP_TESTBED=1
        echo "(--quick: conformance suite and testbed run skipped)"
    fi
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --no-fail-fast --no-tests=warn
    else
        cargo test --workspace --lib --bins --tests --no-fail-fast
    fi
}

run_extra_steps() {
    local entry label script
    for entry in "${EXTRA_STEPS[@]}"; do
        label=${entry%%|*}
        script=${entry#*|}
        if [[ -f "$script" ]]; then
            step "$label" bash "$script"
        else
            section "$label"
            echo "skipped: $script not present"
        fi
    done
}

echo "botnest test run: $(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "quick=$QUICK install=$INSTALL ci=${CI:-false}"

if [[ $INSTALL -eq 1 ]]; then
    step "install: system packages" install_system_packages
    step "install: rust toolchain" install_rust
    step "install: cargo-nextest" install_nextest
    step "install: stix2-validator" install_stix_validator
    if ! have cargo; then
        echo "error: no cargo, nothing more can run" >&2
        exit 1
    fi
fi

step "rustfmt" cargo fmt --all -- --check
step "clippy" cargo clippy --workspace --all-targets -- -D warnings
if [[ $QUICK -eq 0 ]]; then
    step "rustdoc" env RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps
fi
step "tests" run_tests
if [[ $QUICK -eq 0 ]]; then
    step "doctests" cargo test --doc --workspace
    run_extra_steps
fi

section "summary"
if [[ ${#FAILED[@]} -gt 0 ]]; then
    echo "FAILED steps:"
    printf '  - %s\n' "${FAILED[@]}"
    exit 1
fi
echo "all steps passed (${SECONDS}s)"
