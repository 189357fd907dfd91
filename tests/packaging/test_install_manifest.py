"""Checks of deploy/install.yaml against the Kubernetes 1.33 schemas bundled with
kubernetes-validate, which needs no network and no cluster."""

import kubernetes_validate
import kubernetes_validate.utils
import pytest

from conftest import INSTALL_MANIFEST, load_documents

KUBERNETES_VERSION = "1.33.0"
RESTRICTED_CONTAINER_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def test_kubernetes_validate_has_target_version():
    assert KUBERNETES_VERSION in kubernetes_validate.utils.all_versions()


@pytest.mark.parametrize(
    "index",
    range(len(load_documents(INSTALL_MANIFEST))),
)
def test_object_passes_kubernetes_schema(index, install_documents):
    obj = install_documents[index]

    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_validation_rejects_a_wrong_type(install_documents):
    deployment = next(d for d in install_documents if d["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "one"}}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_manifest_contains_each_kind_once(install_documents):
    kinds = [obj["kind"] for obj in install_documents]

    assert kinds[0] == "CustomResourceDefinition"
    assert kinds[1] == "Namespace"
    assert sorted(kinds) == sorted([
        "CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole",
        "ClusterRoleBinding", "Role", "RoleBinding", "Deployment",
    ])


def test_namespace_enforces_restricted_pod_security(install_documents):
    namespace = next(d for d in install_documents if d["kind"] == "Namespace")

    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_deployment_runs_restricted_and_non_root(install_documents):
    deployment = next(d for d in install_documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        assert container["securityContext"] == RESTRICTED_CONTAINER_CONTEXT


def test_deployment_uses_the_service_account_bound_to_rbac(install_documents):
    deployment = next(d for d in install_documents if d["kind"] == "Deployment")
    account = next(d for d in install_documents if d["kind"] == "ServiceAccount")
    bindings = [d for d in install_documents if d["kind"].endswith("RoleBinding")]

    name = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert name == account["metadata"]["name"]
    assert len(bindings) == 2
    for binding in bindings:
        subject = binding["subjects"][0]
        assert subject["name"] == name
        assert subject["namespace"] == account["metadata"]["namespace"]


def test_controller_has_probes_leader_identity_and_tmp(install_documents):
    deployment = next(d for d in install_documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]

    assert container["args"][0] == "run"
    assert "--holder-identity=$(POD_NAME)" in container["args"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert any(volume["name"] == "tmp" and "emptyDir" in volume for volume in pod["volumes"])
