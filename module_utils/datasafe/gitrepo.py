"""The application checkout as git sees it, and whether a safe update may pull into it.

:func:`facts` reads a checkout (revision, branch, uncommitted or untracked files, how it stands
to its upstream after an optional ``git fetch``, which touches only remote-tracking refs);
:func:`problems` judges those facts against what an update requires, naming each problem and
its fix; :func:`task` is the git_state module's whole body. Commands run through ``run``
(:mod:`runner`'s signature); failures raise :class:`GitFailed`, whose ``result`` holds the
fields the module returns beside the message.
"""


class GitFailed(Exception):
    """git failed, or the checkout is not fit for an update; ``result`` is what the module returns with it."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = dict(result or {})


def _git(run, git, path):
    def call(*args, check=True):
        rc, out, err = run([git, "-C", path] + list(args))
        if check and rc != 0:
            raise GitFailed("git %s in %s failed: %s" % (args[0], path, (err or out).strip()))
        return rc, out.strip()

    return call


def facts(run, path, remote="origin", fetch=True, git="git"):
    """What the checkout at ``path`` is: revision, branch, dirty (``git status --porcelain``
    lines), upstream (None without one), ahead, behind and the URL of ``remote``. With ``fetch``
    the remote is fetched first, so ahead and behind describe it as it is now."""
    call = _git(run, git, path)
    call("rev-parse", "--git-dir")
    _, revision = call("rev-parse", "HEAD")
    _, branch = call("rev-parse", "--abbrev-ref", "HEAD")
    _, status = call("status", "--porcelain", "--untracked-files=normal")
    dirty = [line for line in status.splitlines() if line.strip()]
    _, remote_url = call("remote", "get-url", remote)
    if fetch:
        call("fetch", "--quiet", remote)
    rc, upstream = call("rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}", check=False)
    ahead = behind = 0
    if rc == 0 and upstream:
        _, counts = call("rev-list", "--left-right", "--count", "HEAD...@{upstream}")
        ahead, behind = (int(n) for n in counts.split())
    else:
        upstream = None
    return dict(
        revision=revision,
        branch=branch,
        dirty=dirty,
        upstream=upstream,
        ahead=ahead,
        behind=behind,
        remote_url=remote_url,
    )


def problems(state, path, remote="origin", require_clean=True, require_branch=None, require_fast_forward=True):
    """Why an update must not pull into the checkout described by ``state`` (:func:`facts`), each
    problem with its fix; empty when it may."""
    found = []
    dirty, branch = state["dirty"], state["branch"]
    if require_clean and dirty:
        found.append(
            "the working tree of %s has %d uncommitted or untracked file(s) (%s): commit or stash "
            "them first, an update must not discard them" % (path, len(dirty), ", ".join(dirty[:5]))
        )
    if require_branch and branch != require_branch:
        found.append("%s is on %s, not on %s: check out %s first" % (path, branch, require_branch, require_branch))
    if require_fast_forward:
        if state["upstream"] is None:
            found.append(
                "branch %s has no upstream to pull from: set one with "
                "'git branch --set-upstream-to=%s/%s'" % (branch, remote, branch)
            )
        elif state["ahead"]:
            found.append(
                "%s has %d local commit(s) that %s does not: a pull would not fast-forward; "
                "push or reset them first" % (branch, state["ahead"], state["upstream"])
            )
    return found


def task(run, p, git="git"):
    """What the git_state module does with its options ``p``: read the checkout and judge it.
    Returns the module's result; raises :class:`GitFailed` when git fails (just the message) or
    the checkout has problems (the facts and ``problems`` in its result)."""
    result = dict(changed=False, **facts(run, p["path"], p["remote"], p["fetch"], git))
    found = problems(result, p["path"], p["remote"], p["require_clean"], p["require_branch"], p["require_fast_forward"])
    if found:
        raise GitFailed("; ".join(found), dict(result, problems=found))
    return dict(result, problems=[])
