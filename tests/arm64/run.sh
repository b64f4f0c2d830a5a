#!/usr/bin/env bash
# The arm64 image's binary, built exactly as the Dockerfile builds it (tools/cross-build.sh arm64,
# EKS_IPAM_PACK_RELATIVE_RELOCS=1: cross-compiled, not emulated), run under Debian's qemu-user
# against the aarch64 glibc of libc6-arm64-cross (2.36, as distroless cc-debian12):
#   1. the file is an AArch64 ELF executable;
#   2. `--version` prints what the native build prints;
#   3. `diagnose --bundle` gives the same JSON and exit code as the native build, on both incidents;
#   4. `demo` serves, and one scrape's findings equal the native demo's (promtool checks the text).
# The cross build is incremental: the first run costs a release build (~12 min on 2 cores), later
# runs reuse target/aarch64-unknown-linux-gnu. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
native=${EKS_IPAM_BIN:-target/debug/eks-ipam-exporter}
[ -x "$native" ] || { echo "arm64: native binary $native missing (cargo build first)" >&2; exit 2; }
command -v qemu-aarch64 >/dev/null 2>&1 || { echo "arm64: qemu-aarch64 missing (apt-get install qemu-user)" >&2; exit 2; }
export EKS_IPAM_PACK_RELATIVE_RELOCS=1
bin=$(tools/cross-build.sh arm64 | tail -n 1)
sysroot=/usr/aarch64-linux-gnu
q() { qemu-aarch64 -L "$sysroot" "$bin" "$@"; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$bin" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    head = f.read(20)
assert head[:4] == b"\x7fELF" and head[4] == 2, "not a 64-bit ELF"
machine = struct.unpack("<H", head[18:20])[0]
assert machine == 183, f"e_machine {machine}, want 183 (EM_AARCH64)"
print("arm64: AArch64 ELF:", sys.argv[1])
PY

want=$("$native" --version)
got=$(q --version)
[ "$got" = "$want" ] || { echo "arm64: --version '$got', native '$want'" >&2; exit 1; }
echo "arm64: --version: $got"

for b in tests/bundles/karpenter-overcommit tests/bundles/min-ip-target-stall tests/bundles/healthy; do
  set +e
  q diagnose --bundle "$b" --output json >"$work/arm.json"
  rc_arm=$?
  "$native" diagnose --bundle "$b" --output json >"$work/native.json"
  rc_native=$?
  set -e
  [ "$rc_arm" = "$rc_native" ] || { echo "arm64: diagnose $b exit $rc_arm, native $rc_native" >&2; exit 1; }
  diff -u "$work/native.json" "$work/arm.json" >&2 || { echo "arm64: diagnose $b JSON differs" >&2; exit 1; }
  echo "arm64: diagnose --bundle $b: same JSON ($(wc -c <"$work/arm.json") bytes), exit $rc_arm"
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
scrape_findings() { # $1 = port: the demo's eks_ipam_finding lines, sorted
  local port=$1 i
  for i in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/metrics" -o "$work/metrics.$port" 2>/dev/null; then
      grep '^eks_ipam_finding' "$work/metrics.$port" | sort
      return 0
    fi
    sleep 0.2
  done
  echo "arm64: nothing served on $port" >&2
  return 1
}
pa=$(free_port)
# qemu itself in the background, not the function `q`: `$!` would be a subshell, and killing it
# would leave qemu running.
qemu-aarch64 -L "$sysroot" "$bin" demo --listen "127.0.0.1:$pa" 2>"$work/demo-arm.log" &
pids+=($!)
pn=$(free_port)
"$native" demo --listen "127.0.0.1:$pn" 2>"$work/demo-native.log" &
pids+=($!)
scrape_findings "$pa" >"$work/f-arm"
scrape_findings "$pn" >"$work/f-native"
[ -s "$work/f-arm" ] || { echo "arm64: the demo scrape has no findings" >&2; exit 1; }
diff -u "$work/f-native" "$work/f-arm" >&2 || { echo "arm64: demo findings differ" >&2; exit 1; }
command -v promtool >/dev/null 2>&1 || { echo "arm64: promtool missing (apt-get install prometheus)" >&2; exit 2; }
promtool check metrics <"$work/metrics.$pa" || { echo "arm64: promtool check metrics failed on the arm64 demo" >&2; exit 1; }
echo "arm64: demo under qemu-user served $(wc -l <"$work/metrics.$pa") lines; $(wc -l <"$work/f-arm") finding series equal the native demo's"
