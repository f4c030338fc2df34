"""testbed/remove-test-stack.sh against the real Docker engine.

Every safe update rebuilds its images with --no-cache, so each run of the update scenario left
the previous backend image behind untagged (215 of them had piled up on this machine). The
script now removes every image compose built for the test project, tagged or not, and nothing
of any other project.
"""

import os
import subprocess
import uuid

from pgbed import OWNER_LABEL, PG_IMAGE, REPO, TEST_LABEL, docker, process_owner, throwaway_labels

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


ABANDONED = os.path.join(REPO, "testbed", "remove-abandoned-test-servers.sh")


def exited_child():
    """A child that has exited and is not reaped yet (a zombie), and its owner identity."""
    child = subprocess.Popen(["true"])
    while True:
        with open("/proc/%d/stat" % child.pid) as handle:
            if handle.read().rsplit(") ", 1)[1].startswith("Z"):
                return child, process_owner(child.pid)


def test_removes_the_servers_of_ended_test_runs_and_nothing_else():
    """A killed pytest run leaves its throwaway servers running (its fixtures never end).
    Only those whose owning process is gone (reaped, or a zombie) are removed; a live run's and
    unowned ones stay."""
    reaped, reaped_owner = exited_child()
    reaped.wait()  # now no process has that identity
    zombie, zombie_owner = exited_child()  # killed, not reaped yet by its parent: ended too
    tag = uuid.uuid4().hex[:8]
    owners = {
        "reaped": throwaway_labels(reaped_owner),
        "zombie": throwaway_labels(zombie_owner),
        "live": throwaway_labels(),
        "unowned": ["--label", TEST_LABEL + "=1"],
    }
    names = {kind: "datasafe-test-abandon-%s-%s" % (kind, tag) for kind in owners}
    try:
        for kind, labels in owners.items():
            docker("volume", "create", *labels, names[kind])
            docker("create", "--name", names[kind], *labels, "--network", "none", PG_IMAGE, "true")
        result = subprocess.run([ABANDONED], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        volumes = set(output("volume", "ls", "-q"))
        containers = set(output("ps", "-a", "--format", "{{.Names}}"))
        for ended in ("reaped", "zombie"):
            assert names[ended] not in volumes and names[ended] not in containers, ended
        assert {names["live"], names["unowned"]} <= volumes
        assert {names["live"], names["unowned"]} <= containers
        assert "volume %s has no %s label: left alone" % (names["unowned"], OWNER_LABEL) in result.stderr
        assert "container %s has no %s label: left alone" % (names["unowned"], OWNER_LABEL) in result.stderr
    finally:
        zombie.wait()
        for name in names.values():
            docker("rm", "-f", "-v", name, check=False)  # -v: the image's anonymous data volume too
            docker("volume", "rm", name, check=False)
