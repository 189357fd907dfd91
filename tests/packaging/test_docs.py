"""The YAML examples in docs/gitops.md and docs/operating.md parse, and every
TenantImport among them passes the CRD's openAPIV3Schema.

jsonschema applies the schema's standard keywords (types, patterns, bounds, required
fields). It ignores the Kubernetes extensions (`x-kubernetes-*`, `nullable`), so the
CEL rule on the spec is not evaluated here.
"""

import re

import jsonschema
import pytest
import yaml

from conftest import CHART, REPO, load_documents

DOCS = ["docs/gitops.md", "docs/operating.md"]
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def yaml_blocks():
    blocks = []
    for doc in DOCS:
        text = (REPO / doc).read_text(encoding="utf-8")
        for number, block in enumerate(YAML_BLOCK.findall(text), start=1):
            blocks.append(pytest.param(block, id=f"{doc}#{number}"))
    return blocks


def tenant_import_schema():
    crd = load_documents(CHART / "crds" / "tenantimport.yaml")[0]
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_docs_have_yaml_examples():
    assert len(yaml_blocks()) >= 5


@pytest.mark.parametrize("block", yaml_blocks())
def test_yaml_example_parses(block):
    documents = [doc for doc in yaml.safe_load_all(block) if doc is not None]

    assert documents


@pytest.mark.parametrize("block", yaml_blocks())
def test_tenant_import_example_passes_crd_schema(block):
    for document in yaml.safe_load_all(block):
        if not isinstance(document, dict) or document.get("kind") != "TenantImport":
            continue
        jsonschema.validate(document, tenant_import_schema())


def test_crd_schema_rejects_a_bad_tenant_import():
    bad = {
        "apiVersion": "ccops.dev/v1alpha1",
        "kind": "TenantImport",
        "metadata": {"name": "bad"},
        "spec": {
            "source": {"url": "ftp://exports/acme.zip"},
            "target": {"cluster": "EU_West", "databaseSecretRef": {"name": "db"}},
        },
    }

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, tenant_import_schema())
