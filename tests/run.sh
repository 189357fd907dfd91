#!/usr/bin/env bash
# Runs the whole test suite on this machine: starts PostgreSQL when it is down,
# installs the Python test tools (an S3-protocol server and the packaging validators),
# runs every Rust test, then the packaging checks. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 1
    done
fi

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    -r tests/requirements.txt

cargo test --locked "$@"

# The packaging checks run the binary that `cargo test` has just built.
TENANT_OPERATOR_BIN="$PWD/target/debug/tenant-operator" bash tests/packaging/check.sh
