"""The venv's bytecode cache for Ansible's module payloads (pyhooks/datasafe_ansiballz_cache.py).

Real ansible-playbook runs of a builtin module and a datasafe module (its engine under
module_utils) with the venv's Python as the module interpreter, as every datasafe inventory sets it:
the first run fills the cache, the next one compiles nothing, a corrupt entry is compiled again, a
cache directory others can write to is neither read nor written, and ``off`` turns it off.
"""

import marshal
import os
import stat
import subprocess
import sys
import zipfile

import pytest
from harness import REPO, run_playbook

sys.path.insert(0, os.path.join(REPO, "pyhooks"))
import datasafe_ansiballz_cache as cache_hook  # noqa: E402

PLAY = [
    {
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {"name": "stat", "ansible.builtin.stat": {"path": REPO}},
            # bad input on purpose: the module and its engine are imported, then it refuses
            {"name": "datasafe", "report_lines": {"kind": "no-such-kind", "facts": {}}, "ignore_errors": True},
        ],
    }
]


def play(tmp_path, run, cache):
    workdir = tmp_path / run
    workdir.mkdir()
    results, proc = run_playbook(PLAY, str(workdir), extra_env={"DATASAFE_ANSIBALLZ_CACHE": str(cache)})
    assert results["stat"]["stat"]["isdir"] is True, proc.stdout[-3000:]
    assert "value of kind must be one of" in results["datasafe"]["msg"], results["datasafe"]
    return results


def entries(cache):
    """{entry name: (inode, mtime)}: an entry written again gets a new inode (os.replace)."""
    if not cache.exists():
        return {}
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in cache.iterdir()}


def test_the_venvs_python_has_the_hook_installed():
    assert cache_hook.PayloadFinder in sys.path_hooks, (
        "make venv installs datasafe_ansiballz_cache.pth; sys.path_hooks = %r" % (sys.path_hooks,)
    )


def test_the_first_run_fills_the_cache_and_the_next_compiles_nothing(tmp_path):
    cache = tmp_path / "cache"
    play(tmp_path, "first", cache)
    first = entries(cache)
    assert len(first) > 50, sorted(first)  # ansible.module_utils.basic and its imports, datasafe's engine
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert not [name for name in first if not name.endswith(".code")]  # no partial file left behind
    play(tmp_path, "second", cache)
    assert entries(cache) == first  # every import of the second run came from the cache


def test_a_corrupt_entry_is_compiled_again_and_replaced(tmp_path):
    cache = tmp_path / "cache"
    play(tmp_path, "first", cache)
    for path in cache.iterdir():
        path.write_bytes(b"not a code object")
    play(tmp_path, "second", cache)
    for path in cache.iterdir():
        marshal.loads(path.read_bytes())  # noqa: S302  (raises on anything but a valid entry)


def test_a_cache_others_can_write_to_is_neither_read_nor_written(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    planted = cache / "planted.code"
    planted.write_bytes(marshal.dumps(compile("raise SystemExit('planted')", "planted", "exec")))
    play(tmp_path, "run", cache)
    assert [path.name for path in cache.iterdir()] == ["planted.code"]
    assert cache_hook.usable(str(cache)) is False


@pytest.mark.parametrize("setting, loader", [("cache", "PayloadLoader"), ("off", "zipimporter")])
def test_off_leaves_the_payload_to_zipimport(tmp_path, setting, loader):
    payload = tmp_path / "ansible_probe_payload.zip"
    with zipfile.ZipFile(payload, "w") as archive:
        archive.writestr("probe_mod.py", "ANSWER = 42\n")
    code = "import sys; sys.path.insert(0, %r); import probe_mod as m; print(m.ANSWER, type(m.__loader__).__name__)"
    env = dict(os.environ, DATASAFE_ANSIBALLZ_CACHE=str(tmp_path / "cache") if setting == "cache" else "off")
    proc = subprocess.run([sys.executable, "-c", code % str(payload)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["42", loader]
    assert (tmp_path / "cache").exists() is (setting == "cache")


def test_the_key_changes_with_the_source_and_the_path_inside_the_payload():
    key = cache_hook.cache_key("ansible/module_utils/basic.py", b"x = 1\n")
    assert key == cache_hook.cache_key("ansible/module_utils/basic.py", b"x = 1\n")
    assert key != cache_hook.cache_key("ansible/module_utils/basic.py", b"x = 2\n")
    assert key != cache_hook.cache_key("ansible/module_utils/other.py", b"x = 1\n")


def test_only_paths_inside_a_module_payload_are_claimed():
    assert cache_hook.split("/tmp/a/ansible_stat_payload.zip/ansible/module_utils") == (
        "/tmp/a/ansible_stat_payload.zip",
        "ansible/module_utils",
    )
    for path in ("/usr/lib/python3.11", "/tmp/other.zip", ""):
        try:
            cache_hook.split(path)
        except ImportError:
            continue
        raise AssertionError("claimed %r" % path)
