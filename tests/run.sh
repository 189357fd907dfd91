#!/usr/bin/env bash
# Runs the whole test suite on this machine: starts PostgreSQL when it is down,
# installs the test tools the suite starts (an S3-protocol server and the packaging
# validators), then runs every test.
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

if [ -f tests/requirements.txt ]; then
    python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi

cargo test --locked "$@"
