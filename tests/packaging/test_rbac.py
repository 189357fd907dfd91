"""Every Kubernetes resource type the operator's code builds an `Api` for has RBAC
rules in deploy/install.yaml.

tests/packaging_rbac.rs checks the verb of each call from the fake API server's
request log. This scan also catches a resource type that no test exercises yet.
"""

import re

import pytest

from conftest import REPO

SOURCES = [REPO / "src" / "operator", REPO / "src" / "shim"]
API_TYPE = re.compile(r"\bApi\s*(?:::)?\s*<\s*([A-Za-z_][A-Za-z0-9_:]*)\s*>")
# API group and resource of each type the code may name in Api<...>.
RESOURCES = {
    "TenantImport": ("ccops.dev", "tenantimports"),
    "Secret": ("", "secrets"),
    "Lease": ("coordination.k8s.io", "leases"),
    "Event": ("events.k8s.io", "events"),
}


def api_types():
    found = {}
    for folder in SOURCES:
        for path in sorted(folder.rglob("*.rs")):
            for match in API_TYPE.finditer(path.read_text(encoding="utf-8")):
                name = match.group(1).split("::")[-1]
                found.setdefault(name, path.relative_to(REPO))
    return found


def granted_resources(install_documents):
    granted = set()
    for document in install_documents:
        for rule in document.get("rules") or []:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    granted.add((group, resource))
    return granted


def test_scan_finds_the_lease_lock():
    assert "Lease" in api_types()


@pytest.mark.parametrize("type_name", sorted(api_types()))
def test_api_type_has_rbac_rules(type_name, install_documents):
    assert type_name in RESOURCES, (
        f"{api_types()[type_name]} builds Api<{type_name}>: add its group and resource to "
        "RESOURCES here and its rules to import_rules() or lease_rules() in src/deploy.rs"
    )

    assert RESOURCES[type_name] in granted_resources(install_documents)
