"""testbed/remove-test-stack.sh against the real Docker engine.

Every safe update rebuilds its images with --no-cache, so each run of the update scenario left
the previous backend image behind untagged (215 of them had piled up on this machine). The
script now removes every image compose built for the test project, tagged or not, and nothing
of any other project.
"""

import os
import subprocess
import uuid

from pgbed import REPO, docker

SCRIPT = os.path.join(REPO, "testbed", "remove-test-stack.sh")
LABEL = "com.docker.compose.project"


def output(*args):
    return docker(*args).stdout.split()


def remove(project):
    return subprocess.run([SCRIPT, project], capture_output=True, text=True, check=False)


def build(tmp_path, project, tag=None):
    """A tiny image labelled as compose labels what it builds for ``project``; returns its ID."""
    context = tmp_path / uuid.uuid4().hex
    context.mkdir()
    (context / "stamp").write_text(uuid.uuid4().hex)  # new content: a new image every build
    (context / "Dockerfile").write_text("FROM scratch\nCOPY stamp /stamp\n")
    argv = ["build", "-q", "--network", "none", "--label", "%s=%s" % (LABEL, project)]
    if tag:
        argv += ["-t", tag]
    return output(*argv, str(context))[-1]


def image_ids(*filters):
    argv = ["image", "ls", "-q", "--no-trunc"]
    for item in filters:
        argv += ["--filter", item]
    return set(output(*argv))


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
        result = remove(project)
        assert result.returncode == 0, result.stderr
        assert image_ids("label=%s=%s" % (LABEL, project)) == set()
        assert bystander in image_ids("label=%s=%s" % (LABEL, other))
    finally:
        for image in (first, second, bystander):
            docker("image", "rm", "-f", image, check=False)


def test_untags_the_projects_rollback_tags_on_images_it_did_not_build(tmp_path):
    project = "dstest-imgclean-%s" % uuid.uuid4().hex[:8]
    repository = "dsother-%s" % uuid.uuid4().hex[:8]
    image = build(tmp_path, repository, repository + ":keep")  # like the PostgreSQL image
    rollback = "%s:datasafe-rollback-%s-postgres" % (repository, project)
    docker("tag", image, rollback)
    try:
        result = remove(project)
        assert result.returncode == 0, result.stderr
        tags = set(output("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository))
        assert tags == {repository + ":keep"}
    finally:
        docker("image", "rm", "-f", image, check=False)


def test_refuses_a_project_that_is_not_a_test_project(tmp_path):
    other = "dsother-%s" % uuid.uuid4().hex[:8]
    image = build(tmp_path, other)
    try:
        result = remove(other)
        assert result.returncode == 3
        assert "only throwaway test projects (dstest-*)" in result.stderr
        assert image in image_ids("label=%s=%s" % (LABEL, other))
    finally:
        docker("image", "rm", "-f", image, check=False)
