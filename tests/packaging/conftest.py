"""Shared paths and loaders for the packaging checks."""

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tenant-operator"
INSTALL_MANIFEST = REPO / "deploy" / "install.yaml"


def load_documents(path):
    """Parse every YAML document in a file, dropping empty ones."""
    with open(path, encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


@pytest.fixture(scope="session")
def install_documents():
    """The objects of deploy/install.yaml."""
    return load_documents(INSTALL_MANIFEST)
