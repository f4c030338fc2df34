"""The execution environment: `ansible-builder create` writes a build context that pins exactly
what this checkout is tested with (no engine or registry is needed to write it)."""

import json
import os
import re
import subprocess

import yaml
from fleetbed import BIN, REPO


def pins(path):
    """{lower-case name: version} of a pip requirements file's name==version lines."""
    found = {}
    with open(path) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line:
                name, sep, version = line.partition("==")
                assert sep, "%s: '%s' is not pinned with ==" % (path, line)
                found[name.strip().lower()] = version.strip()
    return found


def bundled_collections():
    """{namespace.name: version} of the collections the pinned ansible package ships."""
    import ansible_collections

    root = list(ansible_collections.__path__)[0]
    found = {}
    for namespace in os.listdir(root):
        for name in os.listdir(os.path.join(root, namespace)) if os.path.isdir(os.path.join(root, namespace)) else []:
            manifest = os.path.join(root, namespace, name, "MANIFEST.json")
            if os.path.exists(manifest):
                with open(manifest) as handle:
                    found["%s.%s" % (namespace, name)] = json.load(handle)["collection_info"]["version"]
    return found


def test_ansible_builder_writes_a_context_pinned_like_the_checkout(tmp_path):
    context = tmp_path / "context"
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-builder"), "create", "-f", os.path.join(REPO, "execution-environment.yml")]
        + ["-c", str(context), "--output-filename", "Containerfile"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Containerfile").read_text()
    with open(os.path.join(REPO, "execution-environment.yml")) as handle:
        definition = yaml.safe_load(handle)
    assert definition["version"] == 3
    assert 'ARG EE_BASE_IMAGE="%s"' % definition["images"]["base_image"]["name"] in containerfile

    tested = pins(os.path.join(REPO, "requirements.txt"))
    refs = re.search(r'ARG ANSIBLE_INSTALL_REFS="([^"]+)"', containerfile).group(1).split()
    assert sorted(refs) == ["ansible-core==" + tested["ansible-core"], "ansible-runner==" + tested["ansible-runner"]]

    # the engine's Python dependencies, each at the version the tests run with
    ee_python = pins(context / "_build" / "requirements.txt")
    assert {"pglast", "bashlex", "boto3", "botocore"} <= set(ee_python)
    for name, version in ee_python.items():
        assert tested.get(name) == version, "%s==%s in the EE, requirements.txt: %s" % (name, version, tested.get(name))

    # the collections, at the versions the pinned ansible package bundles
    with open(context / "_build" / "requirements.yml") as handle:
        collections = {c["name"]: c["version"] for c in yaml.safe_load(handle)["collections"]}
    assert {"community.docker", "community.postgresql", "amazon.aws", "awx.awx"} <= set(collections)
    bundled = bundled_collections()
    for name, version in collections.items():
        assert bundled.get(name) == version, "%s %s, bundled %s" % (name, version, bundled.get(name))

    # system packages: ssh to the sites, rsync and git
    bindep = (context / "_build" / "bindep.txt").read_text()
    for package in ("openssh-client", "rsync", "git"):
        assert re.search(r"^%s\b" % package, bindep, re.M), package
    for step in ("collection install", "-r requirements.yml", "COPY _build/requirements.txt", "COPY _build/bindep.txt"):
        assert step in containerfile
    assert 'LABEL org.opencontainers.image.title="datasafe execution environment"' in containerfile
