"""git_state and its engine (gitrepo): the application checkout a safe update pulls into.

The judgement (problems and their wording) is tested from given facts; the module runs real
git against a real throwaway checkout and its bare remote (tmp_path), the way the update's
preflight uses it.
"""

import os
import subprocess

import pytest
from ansible.module_utils.datasafe import gitrepo, runner
from harness import run_module

# Commits in the test checkouts need a name; nothing else of the user's git configuration is read.
GIT_ENV = dict(
    GIT_AUTHOR_NAME="datasafe test",
    GIT_AUTHOR_EMAIL="test@localhost",
    GIT_COMMITTER_NAME="datasafe test",
    GIT_COMMITTER_EMAIL="test@localhost",
    GIT_CONFIG_GLOBAL=os.devnull,
    GIT_CONFIG_NOSYSTEM="1",
)

CLEAN = dict(
    revision="abc", branch="main", dirty=[], upstream="origin/main", ahead=0, behind=2, remote_url="/srv/app.git"
)


def test_a_clean_checkout_on_its_branch_that_fast_forwards_has_no_problem():
    assert gitrepo.problems(CLEAN, "/app", require_branch="main") == []


def test_each_problem_names_what_is_wrong_and_the_fix():
    state = dict(CLEAN, dirty=[" M a", "?? b", " M c", " M d", " M e", " M f"], branch="hotfix", ahead=1)
    assert gitrepo.problems(state, "/app", require_branch="main") == [
        "the working tree of /app has 6 uncommitted or untracked file(s) ( M a, ?? b,  M c,  M d,  M e): "
        "commit or stash them first, an update must not discard them",
        "/app is on hotfix, not on main: check out main first",
        "hotfix has 1 local commit(s) that origin/main does not: a pull would not fast-forward; "
        "push or reset them first",
    ]


def test_a_branch_without_upstream_is_told_how_to_set_one():
    state = dict(CLEAN, upstream=None, ahead=0, behind=0)
    assert gitrepo.problems(state, "/app", remote="lab") == [
        "branch main has no upstream to pull from: set one with 'git branch --set-upstream-to=lab/main'"
    ]


def test_what_is_not_required_is_not_a_problem():
    state = dict(CLEAN, dirty=["?? x"], branch="hotfix", upstream=None)
    assert gitrepo.problems(state, "/app", require_clean=False, require_branch=None, require_fast_forward=False) == []


# ------------------------------------------------------------------ real git: a checkout and its bare remote


def git(*args, cwd=None):
    out = subprocess.run(
        ["git"] + list(args), cwd=cwd, env=dict(os.environ, **GIT_ENV), capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A checkout of ``main`` tracking ``origin/main`` in a bare remote, both in tmp_path."""
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)
    remote, work = tmp_path / "remote.git", tmp_path / "app"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    git("clone", "--quiet", str(remote), str(work))
    git("checkout", "--quiet", "-B", "main", cwd=work)
    (work / "docker-compose.yml").write_text("services: {}\n")
    git("add", "docker-compose.yml", cwd=work)
    git("commit", "--quiet", "-m", "first", cwd=work)
    git("push", "--quiet", "-u", "origin", "main", cwd=work)
    return work


def state_of(path, **args):
    return run_module("git_state", dict(dict(path=str(path), require_branch="main"), **args))


def test_a_clean_checkout_passes_and_reports_how_it_stands(checkout, tmp_path):
    result = state_of(checkout)
    assert not result["failed"] and result["problems"] == [] and result["changed"] is False
    assert result["revision"] == git("rev-parse", "HEAD", cwd=checkout)
    assert (result["branch"], result["upstream"], result["ahead"], result["behind"]) == ("main", "origin/main", 0, 0)
    assert result["dirty"] == [] and result["remote_url"] == str(tmp_path / "remote.git")


def test_the_fetch_sees_what_a_pull_would_bring(checkout, tmp_path):
    other = tmp_path / "other"
    git("clone", "--quiet", str(tmp_path / "remote.git"), str(other))
    (other / "app.txt").write_text("new\n")
    git("add", "app.txt", cwd=other)
    git("commit", "--quiet", "-m", "second", cwd=other)
    git("push", "--quiet", "origin", "main", cwd=other)
    assert state_of(checkout, fetch=False)["behind"] == 0
    result = state_of(checkout)
    assert not result["failed"] and result["behind"] == 1
    assert not (checkout / "app.txt").exists(), "a fetch must leave the working tree alone"


def test_a_dirty_tree_and_a_local_commit_refuse_with_the_facts(checkout):
    (checkout / "docker-compose.yml").write_text("services: {db: {}}\n")
    (checkout / "notes.txt").write_text("mine\n")
    result = state_of(checkout)
    assert result["failed"]
    # git status --porcelain lines (the output is stripped as a whole, so the first loses its lead space)
    assert [line.strip() for line in result["dirty"]] == ["M docker-compose.yml", "?? notes.txt"]
    assert result["problems"] == [
        "the working tree of %s has 2 uncommitted or untracked file(s) (%s): "
        "commit or stash them first, an update must not discard them" % (checkout, ", ".join(result["dirty"]))
    ]
    assert result["msg"] == result["problems"][0]
    assert (checkout / "notes.txt").read_text() == "mine\n", "the checkout must be left as it was"

    git("add", "-A", cwd=checkout)
    git("commit", "--quiet", "-m", "local", cwd=checkout)
    result = state_of(checkout)
    assert result["failed"] and result["ahead"] == 1 and result["dirty"] == []
    assert result["msg"] == (
        "main has 1 local commit(s) that origin/main does not: a pull would not fast-forward; push or reset them first"
    )


def test_another_branch_without_upstream_refuses_twice(checkout):
    git("checkout", "--quiet", "-b", "hotfix", cwd=checkout)
    result = state_of(checkout)
    assert result["failed"] and result["branch"] == "hotfix" and result["upstream"] is None
    assert result["problems"] == [
        "%s is on hotfix, not on main: check out main first" % checkout,
        "branch hotfix has no upstream to pull from: set one with 'git branch --set-upstream-to=origin/hotfix'",
    ]
    assert result["msg"] == "; ".join(result["problems"])


def test_a_directory_that_is_no_checkout_fails_naming_git_and_the_path(tmp_path):
    result = state_of(tmp_path)
    assert result["failed"] and "problems" not in result
    assert result["msg"].startswith("git rev-parse in %s failed: fatal: not a git repository" % tmp_path)


def test_an_unknown_remote_fails_before_anything_is_fetched(checkout):
    result = state_of(checkout, remote="nowhere")
    assert result["failed"]
    assert result["msg"] == "git remote in %s failed: error: No such remote 'nowhere'" % checkout


def test_the_engine_runs_on_the_plain_runner(checkout):
    facts = gitrepo.facts(runner.run, str(checkout), fetch=False)
    assert facts["branch"] == "main" and facts["upstream"] == "origin/main"
    with pytest.raises(gitrepo.GitFailed, match="^git remote in .* failed: error: No such remote 'lab'$"):
        gitrepo.facts(runner.run, str(checkout), remote="lab")
