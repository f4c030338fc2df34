"""testbed/remove-test-stack.sh against the real Docker engine.

Every safe update rebuilds its images with --no-cache, so each run of the update scenario left
the previous backend image behind untagged (215 of them had piled up on this machine). The
script now removes every image compose built for the test project, tagged or not, and nothing
of any other project.
"""

import os
import subprocess
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "testbed", "remove-test-stack.sh")
LABEL = "com.docker.compose.project"

pytestmark = pytest.mark.skipif(
    subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0,
    reason="needs the Docker engine (make setup starts it)",
)


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.split()


def build(tmp_path, project, tag=None):
    """A tiny image labelled as compose labels what it builds for ``project``; returns its ID."""
    context = tmp_path / uuid.uuid4().hex
    context.mkdir()
    (context / "stamp").write_text(uuid.uuid4().hex)  # new content: a new image every build
    (context / "Dockerfile").write_text("FROM scratch\nCOPY stamp /stamp\n")
    argv = ["build", "-q", "--network", "none", "--label", "%s=%s" % (LABEL, project)]
    if tag:
        argv += ["-t", tag]
    return docker(*argv, str(context))[-1]


def image_ids(*filters):
    argv = ["image", "ls", "-q", "--no-trunc"]
    for item in filters:
        argv += ["--filter", item]
    return set(docker(*argv))


def test_removes_tagged_and_untagged_images_of_the_project_and_nothing_else(tmp_path):
    project = "dstest-imgclean-%s" % uuid.uuid4().hex[:8]
    other = "dsother-%s" % uuid.uuid4().hex[:8]  # not a test project: never removed
    tag = "lms-backend:%s" % project
    first = build(tmp_path, project, tag)
    second = build(tmp_path, project, tag)  # takes the tag: ``first`` is now untagged, as after a rebuild
    bystander = build(tmp_path, other)
    try:
        assert first != second
        assert first in image_ids("dangling=true", "label=%s=%s" % (LABEL, project))
        result = subprocess.run([SCRIPT, project], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert image_ids("label=%s=%s" % (LABEL, project)) == set()
        assert bystander in image_ids("label=%s=%s" % (LABEL, other))
    finally:
        for image in (first, second, bystander):
            subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True, check=False)


def test_untags_the_projects_rollback_tags_on_images_it_did_not_build(tmp_path):
    project = "dstest-imgclean-%s" % uuid.uuid4().hex[:8]
    repository = "dsother-%s" % uuid.uuid4().hex[:8]
    image = build(tmp_path, repository, repository + ":keep")  # like the PostgreSQL image
    rollback = "%s:datasafe-rollback-%s-postgres" % (repository, project)
    docker("tag", image, rollback)
    try:
        result = subprocess.run([SCRIPT, project], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        tags = set(docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository))
        assert tags == {repository + ":keep"}
    finally:
        subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True, check=False)


def test_refuses_a_project_that_is_not_a_test_project(tmp_path):
    other = "dsother-%s" % uuid.uuid4().hex[:8]
    image = build(tmp_path, other)
    try:
        result = subprocess.run([SCRIPT, other], capture_output=True, text=True, check=False)
        assert result.returncode == 3
        assert "only throwaway test projects (dstest-*)" in result.stderr
        assert image in image_ids("label=%s=%s" % (LABEL, other))
    finally:
        subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True, check=False)
