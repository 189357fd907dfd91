"""Checks of the Dockerfile: hadolint's rules, and the properties the image must
have, read with dockerfile-parse. Docker itself cannot run where these checks run, so
the image is never built here."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from conftest import REPO

DOCKERFILE = REPO / "Dockerfile"


@pytest.fixture(scope="module")
def parsed():
    parser = DockerfileParser(path=str(DOCKERFILE))
    return parser


def instructions(parsed, name):
    return [item["value"] for item in parsed.structure if item["instruction"] == name]


def crate_field(name):
    cargo = (REPO / "Cargo.toml").read_text(encoding="utf-8")
    return re.search(rf'^{name} = "([^"]+)"', cargo, re.MULTILINE).group(1)


def test_hadolint_passes():
    # pip puts hadolint beside the interpreter, which may not be on PATH in a venv.
    beside_python = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint is missing; install tests/packaging/requirements.txt"

    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_builder_uses_crate_rust_version(parsed):
    args = instructions(parsed, "ARG")

    assert f"RUST_VERSION={crate_field('rust-version')}" in args


def test_two_stages_with_distroless_runtime(parsed):
    stages = instructions(parsed, "FROM")

    assert len(stages) == 2
    assert stages[0].endswith(" AS builder")
    assert stages[1].startswith("gcr.io/distroless/cc")
    # Both on Debian 12, so the binary links against the runtime's glibc version.
    assert "bookworm" in stages[0]
    assert "debian12" in stages[1]


def test_runtime_user_is_not_root(parsed):
    users = instructions(parsed, "USER")

    assert users, "no USER instruction"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_entrypoint_is_the_binary_in_exec_form(parsed):
    entrypoints = instructions(parsed, "ENTRYPOINT")

    assert entrypoints == ['["/usr/local/bin/tenant-operator"]']


def test_version_label_defaults_to_crate_version(parsed):
    # dockerfile-parse substitutes ARG defaults, so the label shows VERSION's default.
    labels = parsed.labels

    assert f"VERSION={crate_field('version')}" in instructions(parsed, "ARG")
    assert labels["org.opencontainers.image.version"] == crate_field("version")
    assert labels["org.opencontainers.image.title"] == "tenant-operator"


def test_build_context_excludes_target():
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()

    assert "target/" in ignored
    assert ".git/" in ignored
