"""Checks of charts/tenant-operator that need no helm binary.

- Every file that is not a template parses (YAML, or JSON for the values schema).
- values.yaml, and the test values that turn every option on, pass values.schema.json,
  and the schema rejects a table of wrong values.
- Each template is valid YAML after its template actions are replaced as
  `strip_actions` describes, which catches errors in the literal YAML around them.
- The chart rendered by tests/packaging/gotemplate.py (a subset of Helm's template
  language) passes the Kubernetes 1.33 schemas, and its RBAC rules and security
  settings equal those of deploy/install.yaml.
"""

import json
import os
import re
import subprocess

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import CHART, REPO, load_documents
from gotemplate import TemplateError, merge_values, render_chart

KUBERNETES_VERSION = "1.33.0"
VALUES_ALL = REPO / "tests" / "packaging" / "values-all.yaml"
# Kinds outside the Kubernetes API, which kubernetes-validate has no schema for.
KINDS_WITHOUT_SCHEMA = {"ServiceMonitor"}


def load_yaml(path):
    with open(path, encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def schema():
    with open(CHART / "values.schema.json", encoding="utf-8") as stream:
        return json.load(stream)


def schema_errors(values):
    validator = jsonschema.Draft7Validator(schema())
    return [error.message for error in validator.iter_errors(values)]


def default_values():
    return load_yaml(CHART / "values.yaml")


def merged_values(overrides):
    """Merge overrides into values.yaml as `helm --values` does."""
    return merge_values(default_values(), overrides)


def strip_actions(text):
    """Replace template actions so the literal YAML of a template can be parsed.

    A line that contains only actions is dropped: those are control actions (`if`, `end`,
    `with`, `range`, variables) or actions that emit whole YAML blocks (`include` or
    `toYaml` with `nindent`), which the real rendering checks cover. An action inside
    a line becomes the scalar TEMPLATE, so `replicas: {{ .Values.replicaCount }}`
    parses as `replicas: TEMPLATE`.
    """
    text = re.sub(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", "", text, flags=re.DOTALL)
    lines = []
    for line in text.splitlines():
        without = re.sub(r"\{\{.*?\}\}", "", line)
        if "{{" in line and not without.strip():
            continue
        lines.append(re.sub(r"\{\{.*?\}\}", "TEMPLATE", line))
    return "\n".join(lines)


def rendered_objects(overrides=None):
    objects = []
    for name, text in render_chart(CHART, overrides).items():
        if not name.endswith(".yaml"):
            continue
        for document in yaml.safe_load_all(text):
            if document is not None:
                objects.append(document)
    return objects


def find(objects, kind, name_suffix=""):
    matches = [
        obj for obj in objects
        if obj["kind"] == kind and obj["metadata"]["name"].endswith(name_suffix)
    ]
    assert len(matches) == 1, f"expected one {kind} named *{name_suffix}, found {len(matches)}"
    return matches[0]


@pytest.mark.parametrize(
    "path",
    ["Chart.yaml", "values.yaml", "crds/tenantimport.yaml"],
)
def test_chart_file_is_yaml(path):
    documents = load_documents(CHART / path)

    assert documents, f"{path} has no YAML document"


def test_chart_metadata():
    chart = load_yaml(CHART / "Chart.yaml")
    cargo = (REPO / "Cargo.toml").read_text(encoding="utf-8")
    crate_version = re.search(r'^version = "([^"]+)"', cargo, re.MULTILINE).group(1)

    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "tenant-operator"
    assert chart["appVersion"] == crate_version


def test_values_schema_is_valid_draft_7():
    jsonschema.Draft7Validator.check_schema(schema())


def test_default_values_pass_schema():
    assert schema_errors(default_values()) == []


def test_all_options_values_pass_schema():
    assert schema_errors(merged_values(load_yaml(VALUES_ALL))) == []


INVALID_VALUES = [
    ("unknown top-level key", {"replicas": 2}),
    ("misspelt nested key", {"controller": {"metricPort": 9090}}),
    ("replica count as text", {"replicaCount": "two"}),
    ("negative replica count", {"replicaCount": -1}),
    ("unknown pull policy", {"image": {"pullPolicy": "Sometimes"}}),
    ("digest without algorithm", {"image": {"digest": "0123abcd"}}),
    ("port out of range", {"controller": {"metricsPort": 70000}}),
    ("unknown log format", {"logFormat": "xml"}),
    ("watch namespace not a DNS label", {"watchNamespace": "Contact_Center"}),
    ("resource quantity not a quantity", {"controller": {"resources": {"limits": {"memory": "lots"}}}}),
    ("shim without database secret", {"shim": {"enabled": True, "auth": {"existingSecret": "auth"}}}),
    ("shim without auth secret", {"shim": {"enabled": True, "databaseSecret": {"name": "db", "key": "url"}}}),
    ("unknown service type", {"shim": {"service": {"type": "ExternalName"}}}),
    ("lease cluster not a DNS label", {"shim": {"leaseCluster": "EU_west"}}),
    ("scrape interval without unit", {"metrics": {"serviceMonitor": {"interval": "30"}}}),
    ("env entry without name", {"controller": {"env": [{"value": "x"}]}}),
    ("rbac flag as text", {"rbac": {"create": "yes"}}),
]


@pytest.mark.parametrize("overrides", [case[1] for case in INVALID_VALUES], ids=[case[0] for case in INVALID_VALUES])
def test_schema_rejects_invalid_values(overrides):
    assert schema_errors(merged_values(overrides)) != []


def test_schema_accepts_shim_without_auth_when_insecure():
    overrides = {"shim": {"enabled": True, "databaseSecret": {"name": "db", "key": "url"},
                          "auth": {"insecureNoAuth": True}}}

    assert schema_errors(merged_values(overrides)) == []


@pytest.mark.parametrize(
    "template",
    sorted(path.name for path in (CHART / "templates").glob("*.yaml")),
)
def test_template_literal_yaml_parses(template):
    text = (CHART / "templates" / template).read_text(encoding="utf-8")

    documents = [doc for doc in yaml.safe_load_all(strip_actions(text)) if doc is not None]

    for document in documents:
        assert "apiVersion" in document
        assert "kind" in document


@pytest.mark.parametrize("values_name", ["default", "all-options"])
def test_rendered_chart_passes_kubernetes_schemas(values_name):
    overrides = load_yaml(VALUES_ALL) if values_name == "all-options" else None
    objects = rendered_objects(overrides)

    assert objects
    for obj in objects:
        if obj["kind"] in KINDS_WITHOUT_SCHEMA:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_rendered_defaults_create_expected_objects():
    kinds = sorted(obj["kind"] for obj in rendered_objects())

    assert kinds == sorted([
        "ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding",
        "Service", "ServiceAccount",
    ])


def test_rendered_all_options_create_optional_objects():
    objects = rendered_objects(load_yaml(VALUES_ALL))

    kinds = [obj["kind"] for obj in objects]
    assert "NetworkPolicy" in kinds
    assert "ServiceMonitor" in kinds
    assert "ClusterRole" not in kinds
    assert kinds.count("Service") == 2
    deployment = find(objects, "Deployment")
    containers = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert containers == ["controller", "shim"]


def test_chart_rbac_equals_install_manifest(install_documents):
    objects = rendered_objects()

    chart_imports = find(objects, "ClusterRole")["rules"]
    chart_leases = find(objects, "Role", "-leases")["rules"]
    manifest_imports = next(d for d in install_documents if d["kind"] == "ClusterRole")["rules"]
    manifest_leases = next(d for d in install_documents if d["kind"] == "Role")["rules"]
    assert chart_imports == manifest_imports
    assert chart_leases == manifest_leases


def test_watch_namespace_grants_import_rules_there_only():
    objects = rendered_objects({"watchNamespace": "contact-center"})

    role = find(objects, "Role", "tenant-operator")
    binding = find(objects, "RoleBinding", "tenant-operator")
    assert role["metadata"]["namespace"] == "contact-center"
    assert binding["metadata"]["namespace"] == "contact-center"
    assert binding["subjects"][0]["namespace"] == "tenant-operator"
    assert not [obj for obj in objects if obj["kind"].startswith("Cluster")]


def test_chart_security_context_equals_install_manifest(install_documents):
    deployment = find(rendered_objects(load_yaml(VALUES_ALL)), "Deployment")
    manifest = next(d for d in install_documents if d["kind"] == "Deployment")
    expected = manifest["spec"]["template"]["spec"]["containers"][0]["securityContext"]

    pod = deployment["spec"]["template"]["spec"]
    for container in pod["containers"]:
        assert container["securityContext"] == expected, container["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_every_container_has_probes_resources_and_tmp():
    deployment = find(rendered_objects(load_yaml(VALUES_ALL)), "Deployment")

    for container in deployment["spec"]["template"]["spec"]["containers"]:
        name = container["name"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["resources"]["limits"]["memory"], name
        assert "/tmp" in [mount["mountPath"] for mount in container["volumeMounts"]], name


def test_shim_reads_credentials_from_existing_secret():
    deployment = find(rendered_objects(load_yaml(VALUES_ALL)), "Deployment")
    pod = deployment["spec"]["template"]["spec"]

    shim = next(c for c in pod["containers"] if c["name"] == "shim")
    database = next(env for env in shim["env"] if env["name"] == "DATABASE_URL")
    auth_volume = next(v for v in pod["volumes"] if v["name"] == "shim-auth")
    assert database["valueFrom"]["secretKeyRef"] == {"name": "eu-west-configdb", "key": "url"}
    assert auth_volume["secret"]["secretName"] == "tenant-operator-shim-auth"
    assert "--clients-file=/etc/tenant-operator/auth/clients" in shim["args"]


def test_shim_takes_the_controller_lease():
    deployment = find(rendered_objects(load_yaml(VALUES_ALL)), "Deployment")
    shim = next(c for c in deployment["spec"]["template"]["spec"]["containers"]
                if c["name"] == "shim")

    assert "--lease-cluster=eu-west" in shim["args"]
    assert "--lease-namespace=$(POD_NAMESPACE)" in shim["args"]
    assert "--holder-identity=$(POD_NAME)-shim" in shim["args"]
    namespace = next(env for env in shim["env"] if env["name"] == "POD_NAMESPACE")
    assert namespace["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_shim_keeps_database_lock_by_default():
    overrides = {"shim": {"enabled": True, "databaseSecret": {"name": "db", "key": "url"},
                          "auth": {"insecureNoAuth": True}}}
    deployment = find(rendered_objects(overrides), "Deployment")
    shim = next(c for c in deployment["spec"]["template"]["spec"]["containers"]
                if c["name"] == "shim")

    assert not [arg for arg in shim["args"] if arg.startswith("--lease-")]
    assert not [env for env in shim["env"] if env["name"] == "POD_NAMESPACE"]


FAILING_VALUES = [
    ("shim without database secret", {"shim": {"enabled": True, "auth": {"existingSecret": "auth"}}}),
    ("shim without auth secret", {"shim": {"enabled": True, "databaseSecret": {"name": "db", "key": "url"}}}),
    ("shim port equals metrics port", {"shim": {"enabled": True, "port": 9090,
                                                "databaseSecret": {"name": "db", "key": "url"},
                                                "auth": {"existingSecret": "auth"}}}),
    ("service monitor without service", {"metrics": {"service": {"enabled": False},
                                                     "serviceMonitor": {"enabled": True}}}),
    ("existing service account without name", {"serviceAccount": {"create": False}}),
]


@pytest.mark.parametrize("overrides", [case[1] for case in FAILING_VALUES], ids=[case[0] for case in FAILING_VALUES])
def test_templates_fail_on_inconsistent_values(overrides):
    with pytest.raises(TemplateError):
        render_chart(CHART, overrides)


def test_chart_controller_matches_install_manifest(install_documents):
    chart_pod = find(rendered_objects(), "Deployment")["spec"]["template"]["spec"]
    manifest = next(d for d in install_documents if d["kind"] == "Deployment")
    manifest_pod = manifest["spec"]["template"]["spec"]
    chart = chart_pod["containers"][0]
    expected = manifest_pod["containers"][0]

    for field in ["args", "ports", "livenessProbe", "readinessProbe", "resources", "volumeMounts"]:
        assert chart[field] == expected[field], field
    expected_env = [env["name"] for env in expected["env"]]
    chart_env = [env["name"] for env in chart["env"]]
    assert set(expected_env) <= set(chart_env)
    assert chart_pod["volumes"] == manifest_pod["volumes"]
    assert chart_pod["terminationGracePeriodSeconds"] == manifest_pod["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("values_name", ["default", "all-options"])
def test_notes_render(values_name):
    overrides = load_yaml(VALUES_ALL) if values_name == "all-options" else None

    notes = render_chart(CHART, overrides)["NOTES.txt"]

    assert "tenant-operator" in notes
    assert "helm show crds" in notes
    if values_name == "all-options":
        assert "contact-center only" in notes
        assert "tenant-operator-shim" in notes


def tenant_operator_binary():
    """The binary check.sh builds, or the one TENANT_OPERATOR_BIN names."""
    path = os.environ.get("TENANT_OPERATOR_BIN") or str(REPO / "target" / "debug" / "tenant-operator")
    assert os.access(path, os.X_OK), (
        f"{path} is missing; run tests/packaging/check.sh, which builds it, "
        "or set TENANT_OPERATOR_BIN"
    )
    return path


CONTAINER_VALUES = [
    ("default", None),
    ("all options", "values-all"),
    ("shim without auth", {"shim": {"enabled": True, "databaseSecret": {"name": "db", "key": "url"},
                                    "auth": {"insecureNoAuth": True}}}),
]


@pytest.mark.parametrize("overrides", [case[1] for case in CONTAINER_VALUES],
                         ids=[case[0] for case in CONTAINER_VALUES])
def test_container_args_are_accepted_by_the_binary(overrides):
    if overrides == "values-all":
        overrides = load_yaml(VALUES_ALL)
    binary = tenant_operator_binary()
    deployment = find(rendered_objects(overrides), "Deployment")

    for container in deployment["spec"]["template"]["spec"]["containers"]:
        # The kubelet expands $(VAR) from the container's environment; do the same.
        args = [
            arg.replace("$(POD_NAMESPACE)", "tenant-operator").replace("$(POD_NAME)", "pod-0")
            for arg in container["args"]
        ]
        # clap rejects an unknown option or an invalid value before it acts on --help.
        result = subprocess.run([binary, *args, "--help"], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0, f"{container['name']} {args}: {result.stderr}"
