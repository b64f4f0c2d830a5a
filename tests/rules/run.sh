#!/usr/bin/env bash
# Checks and unit-tests the shipped Prometheus rules; exits non-zero on any failure.
#   tests/rules/run.sh            (PROMTOOL=/path/to/promtool to use another binary)
# 1. promtool check rules   deploy/rules/eks-ipam-exporter.rules.yaml
# 2. check_coverage.py      contract names/severities, every alert tested at its for: boundary
# 3. promtool test rules    tests/rules/*.test.yaml
# 4. gen_deploy.py --check  the rules file, the PrometheusRule and the dashboards are what mixin/ builds (needs jsonnet)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
promtool="${PROMTOOL:-promtool}"
if ! command -v "$promtool" >/dev/null 2>&1; then
  echo "run.sh: promtool not found; install Debian's 'prometheus' package (apt-get install -y prometheus)" >&2
  exit 2
fi
"$promtool" check rules "$root/deploy/rules/eks-ipam-exporter.rules.yaml"
python3 "$here/check_coverage.py"
"$promtool" test rules "$here"/*.test.yaml
python3 "$root/tools/gen_deploy.py" --check
