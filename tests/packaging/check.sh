#!/usr/bin/env bash
# Runs the packaging checks: Dockerfile lint, Helm chart values and templates, the
# install manifest against the Kubernetes schemas, and the Argo CD health check.
#
# Needs the Python packages in tests/packaging/requirements.txt:
#   python3 -m pip install -r tests/packaging/requirements.txt
# and builds the tenant-operator binary with cargo unless TENANT_OPERATOR_BIN names one.
# Set PYTHON to choose the interpreter (default python3). Extra arguments go to pytest.
set -euo pipefail

cd "$(dirname "$0")/../.."
python="${PYTHON:-python3}"

if ! "$python" -c 'import yaml, jsonschema, kubernetes_validate, lupa, dockerfile_parse, pytest' 2>/dev/null; then
    echo "check.sh: Python packages are missing; install them with" >&2
    echo "  $python -m pip install -r tests/packaging/requirements.txt" >&2
    exit 1
fi

# The chart checks pass the rendered container args to the binary.
if [ -z "${TENANT_OPERATOR_BIN:-}" ]; then
    cargo build --quiet --locked --bin tenant-operator
fi

exec "$python" -m pytest tests/packaging -p no:cacheprovider "$@"
