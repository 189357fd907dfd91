"""Runs gitops/argocd-health.lua on sample TenantImport objects.

Argo CD evaluates health checks with gopher-lua, a Lua 5.1 implementation, so the
script runs here in lupa's Lua 5.1 runtime with the object as the global `obj`.
"""

from pathlib import Path

import jsonschema
import pytest
import yaml
from lupa import lua51

from conftest import CHART, REPO, load_documents

SCRIPT = REPO / "gitops" / "argocd-health.lua"
CASES_DIR = Path(__file__).parent / "argocd"
ARGO_CD_PATCH = REPO / "gitops" / "argocd-cm-patch.yaml"
ARGO_CD_KEY = "resource.customizations.health.ccops.dev_TenantImport"
HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def load_cases():
    with open(CASES_DIR / "health_test.yaml", encoding="utf-8") as stream:
        return yaml.safe_load(stream)["tests"]


def assess(obj):
    """Run the health script on one object and return (status, message)."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(SCRIPT.read_text(encoding="utf-8"))
    return result["status"], result["message"]


@pytest.mark.parametrize("case", load_cases(), ids=lambda case: Path(case["inputPath"]).stem)
def test_health_of_sample(case):
    with open(CASES_DIR / case["inputPath"], encoding="utf-8") as stream:
        obj = yaml.safe_load(stream)

    status, message = assess(obj)

    assert status == case["healthStatus"]["status"]
    assert message == case["healthStatus"]["message"]


def test_every_outcome_has_a_sample():
    outcomes = set()
    for case in load_cases():
        with open(CASES_DIR / case["inputPath"], encoding="utf-8") as stream:
            outcomes.add((yaml.safe_load(stream).get("status") or {}).get("outcome"))

    assert {"Imported", "Conflict", "LockTimeout", "Invalid", "Failed"} <= outcomes


@pytest.mark.parametrize("outcome", ["Imported", "Conflict", "LockTimeout", "Invalid", "Failed", "Unheard"])
def test_health_status_is_known_to_argo_cd(outcome):
    obj = {"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "outcome": outcome}}

    status, message = assess(obj)

    assert status in HEALTH_STATUSES
    assert message


def test_argo_cd_patch_embeds_the_script():
    with open(ARGO_CD_PATCH, encoding="utf-8") as stream:
        patch = yaml.safe_load(stream)

    assert patch["kind"] == "ConfigMap"
    assert patch["metadata"]["name"] == "argocd-cm"
    assert patch["data"][ARGO_CD_KEY] == SCRIPT.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", load_cases(), ids=lambda case: Path(case["inputPath"]).stem)
def test_sample_status_passes_crd_schema(case):
    crd = load_documents(CHART / "crds" / "tenantimport.yaml")[0]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    with open(CASES_DIR / case["inputPath"], encoding="utf-8") as stream:
        status = yaml.safe_load(stream).get("status")

    if status is not None:
        jsonschema.validate(status, schema)
