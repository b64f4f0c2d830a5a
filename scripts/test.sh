#!/usr/bin/env bash
# The one test command (README "Test"; .ci/run calls exactly this).
# Installs what the tests need when it is missing (Debian: prometheus,
# prometheus-alertmanager, chromium, jsonnet, openssl, curl, qemu-user, gcc-aarch64-linux-gnu, python3-venv; pip: tests/requirements.txt into .venv), then runs
# every suite: rustfmt, clippy, cargo tests (unit, integration, golden
# exposition, live end-to-end against moto, the fake apiserver in
# examples/kube_apiserver and the fakes in tests/fakes),
# Python tests (limits table vs moto_server, bundle/manifest/dashboard checks,
# the fakes, alerting end to end, the page in headless Chromium), promtool
# rule tests, a small run of the scale harness (examples/scale). Exits non-zero if anything fails. Screenshots: test-output/.
set -uo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
passed=0
failed=0
failures=()
run_suite() {
  local name=$1
  shift
  step "$name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

# --- install what is missing -------------------------------------------------
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
apt_install() {
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
apt_pkgs=()
command -v promtool >/dev/null 2>&1 || apt_pkgs+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 || apt_pkgs+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || apt_pkgs+=(chromium)
command -v jsonnet >/dev/null 2>&1 || apt_pkgs+=(jsonnet)
command -v openssl >/dev/null 2>&1 || apt_pkgs+=(openssl)  # test certificates (TLS tests)
command -v curl >/dev/null 2>&1 || apt_pkgs+=(curl)  # a real client for the TLS and auth tests
command -v qemu-aarch64 >/dev/null 2>&1 || apt_pkgs+=(qemu-user)  # runs the arm64 binary (tests/arm64)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || apt_pkgs+=(gcc-aarch64-linux-gnu)  # its cross C compiler and linker
[ -x /usr/sbin/nginx ] || apt_pkgs+=(nginx)  # the scale harness's static-body baseline
if ((${#apt_pkgs[@]})); then
  step "installing Debian packages: ${apt_pkgs[*]}"
  apt_install "${apt_pkgs[@]}" || { echo "apt-get install ${apt_pkgs[*]} failed" >&2; exit 2; }
fi
# Python requirements go into a virtual environment (stock Debian 12 / Ubuntu 24.04 refuse system
# installs: PEP 668 "externally-managed-environment"). It sees the system's packages, so what is
# already installed is not downloaded again; pip is told never to touch the system Python.
venv="${EKS_IPAM_TEST_VENV:-$PWD/.venv}"
if ! [ -x "$venv/bin/python3" ] && ! python3 -m venv --system-site-packages "$venv" >/dev/null 2>&1; then
  # Debian's venv cannot bootstrap pip without python3-venv.
  step "installing Debian package python3-venv"
  rm -rf "$venv"
  apt_install python3-venv && python3 -m venv --system-site-packages "$venv" \
    || { echo "cannot create the Python virtual environment $venv" >&2; exit 2; }
fi
export PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" PIP_REQUIRE_VIRTUALENV=true
if ! python3 -c 'import moto, boto3, pytest, yaml, helm_python, kubernetes_validate, jsonschema, bcrypt' >/dev/null 2>&1 \
  || ! command -v moto_server >/dev/null 2>&1; then
  step "installing Python test requirements into $venv"
  python3 -m pip install -q -r tests/requirements.txt || { echo "pip install failed" >&2; exit 2; }
fi
if ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add clippy rustfmt >/dev/null 2>&1 || true
fi

# --- suites -------------------------------------------------------------------
run_suite "cargo fmt --check" cargo fmt --check
run_suite "cargo clippy --all-targets -- -D warnings" cargo clippy --all-targets --locked -- -D warnings
run_suite "cargo test" cargo test --locked
export EKS_IPAM_BIN="$PWD/target/debug/eks-ipam-exporter"
# Under the test command, a missing test dependency is a failure, not a skip.
export EKS_IPAM_REQUIRE_ALL=1
run_suite "pytest tests/python" python3 -m pytest -q tests/python
# The scale harness at a small size, so it cannot rot (the large runs are in README "Performance").
run_suite "scale harness smoke" cargo run --locked -q --example scale -- --nodes 20 --pods-per-node 10 \
  --steady 3 --bench-seconds 1 --trials 2 --exporter target/debug/eks-ipam-exporter --check
# Through bash: a lost exec bit must not drop the suite (a missing script fails it).
run_suite "promtool rules" bash tests/rules/run.sh
# The image's arm64 binary, cross-compiled as the Dockerfile does, run under qemu-user (incremental:
# only the first run pays the release build).
run_suite "arm64 binary under qemu-user" bash tests/arm64/run.sh

echo
if ((failed)); then
  echo "FAILED suites: ${failures[*]}"
fi
echo "suites: ${passed} passed, ${failed} failed"
((failed == 0))
