"""The Prometheus textfile engine (module_utils/datasafe/metrics.py), on real files.

Backups, off-site copies and restore drills all write their node_exporter textfiles through it;
these tests pin what they rely on: the exposition format's escaping, other label sets kept, the
old file intact when a write fails, and no sample lost when writers run at the same time.
"""

import os
import subprocess
import sys
import threading

import pytest
from ansible.module_utils.datasafe import metrics

FAMILIES = (
    metrics.gauge("datasafe_test_runs", "Runs of the test writer."),
    metrics.gauge("datasafe_test_value", "The value a writer wrote last."),
    metrics.gauge("datasafe_test_total", "Updates of all writers together."),
)
LABELS = metrics.labels_key((("database", "lms"), ("kind", "scheduled")))


def put(labels, **values):
    def change(samples):
        for short, value in values.items():
            samples[("datasafe_test_" + short, metrics.labels_key(labels))] = value

    return change


def files(directory):
    return sorted(os.listdir(directory))


# --------------------------------------------------------------------------- format


def test_the_file_is_the_exposition_format_in_the_callers_order(tmp_path):
    path = str(tmp_path / "textfile" / "t.prom")
    assert metrics.update(path, FAMILIES, put(LABELS, value=1.5, runs=3)) == path
    with open(path) as handle:
        assert handle.read() == (
            "# HELP datasafe_test_runs Runs of the test writer.\n"
            "# TYPE datasafe_test_runs gauge\n"
            'datasafe_test_runs{database="lms",kind="scheduled"} 3\n'
            "# HELP datasafe_test_value The value a writer wrote last.\n"
            "# TYPE datasafe_test_value gauge\n"
            'datasafe_test_value{database="lms",kind="scheduled"} 1.5\n'
        )
    # the lock file sits beside it; no temporary file is left; node_exporter may read it
    assert files(tmp_path / "textfile") == ["t.prom", "t.prom.lock"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_values_are_spelled_as_prometheus_reads_them():
    assert [metrics.format_value(v) for v in (0, 7, True, 2.25, 1000.0, "1000.000")] == [
        "0",
        "7",
        "1",
        "2.25",
        "1000.0",
        "1000.000",
    ]
    assert [metrics.format_value(float(v)) for v in ("nan", "inf", "-inf")] == ["NaN", "+Inf", "-Inf"]


def test_label_values_with_quotes_backslashes_and_newlines_are_escaped_and_read_back(tmp_path):
    path = str(tmp_path / "t.prom")
    odd = 'backup@nas:/srv/"lms"\\x\nsecond line'
    metrics.update(path, FAMILIES, put((("target", odd),), runs=1))
    with open(path) as handle:
        lines = handle.read().splitlines()
    assert lines[2] == 'datasafe_test_runs{target="backup@nas:/srv/\\"lms\\"\\\\x\\nsecond line"} 1'
    assert len(lines) == 3  # the newline in the value did not break the sample's line
    assert metrics.read(path) == {("datasafe_test_runs", (("target", odd),)): "1"}
    # written again unchanged: escaping and unescaping are exact inverses
    metrics.update(path, FAMILIES, lambda samples: None)
    with open(path) as handle:
        assert handle.read().splitlines() == lines


def test_label_values_with_braces_and_commas_are_read_back(tmp_path):
    path = str(tmp_path / "t.prom")
    odd = (("target", 's3://b/x} 2,y="z"'), ("zone", "a,b"))
    metrics.update(path, FAMILIES, put(odd, runs=4))
    assert metrics.read(path) == {("datasafe_test_runs", odd): "4"}


def test_help_text_is_escaped(tmp_path):
    path = str(tmp_path / "t.prom")
    family = metrics.gauge("datasafe_test_runs", "a \\ b\nc")
    metrics.update(path, [family], put((), runs=1))
    with open(path) as handle:
        assert handle.read() == (
            "# HELP datasafe_test_runs a \\\\ b\\nc\n# TYPE datasafe_test_runs gauge\ndatasafe_test_runs 1\n"
        )


def test_malformed_lines_and_unknown_families_are_dropped(tmp_path):
    path = tmp_path / "t.prom"
    path.write_text(
        "# HELP datasafe_test_runs old help\n"
        'datasafe_test_runs{database="a"} 1\n'
        'datasafe_test_runs{database="unterminated} 2\n'
        "not a sample\n"
        'datasafe_other{database="a"} 5\n'
        "datasafe_test_value 9\n"
    )
    assert metrics.read(str(path)) == {
        ("datasafe_test_runs", (("database", "a"),)): "1",
        ("datasafe_other", (("database", "a"),)): "5",
        ("datasafe_test_value", ()): "9",
    }
    metrics.update(str(path), FAMILIES, lambda samples: None)
    text = path.read_text()
    assert "datasafe_other" not in text and "unterminated" not in text and "old help" not in text
    assert 'datasafe_test_runs{database="a"} 1\n' in text and "datasafe_test_value 9\n" in text


# --------------------------------------------------------------------------- other label sets


def test_other_label_sets_are_kept_and_sorted(tmp_path):
    path = str(tmp_path / "t.prom")
    metrics.update(path, FAMILIES, put((("database", "lms"), ("kind", "scheduled")), runs=1, value=10))
    metrics.update(path, FAMILIES, put((("database", "billing"), ("kind", "manual")), runs=1))
    metrics.update(path, FAMILIES, put((("database", "lms"), ("kind", "manual")), runs=2))
    metrics.update(path, FAMILIES, put((("database", "lms"), ("kind", "scheduled")), runs=5))
    with open(path) as handle:
        text = handle.read()
    assert text.splitlines()[2:5] == [
        'datasafe_test_runs{database="billing",kind="manual"} 1',
        'datasafe_test_runs{database="lms",kind="manual"} 2',
        'datasafe_test_runs{database="lms",kind="scheduled"} 5',
    ]
    # a sample this run did not write (here: value) keeps the value an earlier run gave it
    assert 'datasafe_test_value{database="lms",kind="scheduled"} 10\n' in text
    assert text.count("# TYPE datasafe_test_runs gauge") == 1


def test_carrying_a_value_over_a_failure_is_the_callers_decision(tmp_path):
    path = str(tmp_path / "t.prom")
    key = ("datasafe_test_value", LABELS)

    def run(success, now):
        def change(samples):
            samples[("datasafe_test_runs", LABELS)] = now
            samples[key] = now if success else samples.get(key, 0)

        metrics.update(path, FAMILIES, change)

    run(False, 50)
    run(True, 100)
    run(False, 200)
    assert metrics.read(path)[key] == "100"
    assert metrics.read(path)[("datasafe_test_runs", LABELS)] == "200"


# --------------------------------------------------------------------------- failures


def test_a_failing_change_leaves_the_old_file_and_releases_the_lock(tmp_path):
    path = str(tmp_path / "t.prom")
    metrics.update(path, FAMILIES, put(LABELS, runs=1))
    before = open(path).read()

    def broken(samples):
        samples[("datasafe_test_runs", LABELS)] = 2
        raise ValueError("caller bug")

    with pytest.raises(ValueError):
        metrics.update(path, FAMILIES, broken)
    assert open(path).read() == before
    metrics.update(path, FAMILIES, put(LABELS, runs=3))  # the lock was released
    assert metrics.read(path)[("datasafe_test_runs", LABELS)] == "3"


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs, unmounted after the test (needs root, as the off-site tests' tiny disk)."""
    mount = tmp_path / "full"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % mounted.stderr.decode().strip())
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_write_that_fails_for_lack_of_space_leaves_the_old_file_intact(full_disk):
    path = str(full_disk / "t.prom")
    metrics.update(path, FAMILIES, put(LABELS, runs=1, value=1))
    before = open(path).read()
    with open(str(full_disk / "filler"), "wb", buffering=0) as filler:
        with pytest.raises(OSError):
            while True:
                filler.write(b"\0" * 4096)
    with pytest.raises(OSError) as failed:
        metrics.update(path, FAMILIES, put(LABELS, runs=2, value=2))
    assert "No space left" in str(failed.value)
    assert open(path).read() == before
    assert files(full_disk) == ["filler", "t.prom", "t.prom.lock"]  # the temporary file was removed
    os.unlink(str(full_disk / "filler"))
    metrics.update(path, FAMILIES, put(LABELS, runs=3))
    assert metrics.read(path)[("datasafe_test_runs", LABELS)] == "3"


# --------------------------------------------------------------------------- concurrent writers

WRITERS, ROUNDS = 6, 30
HERE = os.path.dirname(os.path.abspath(__file__))
# A writer process of its own: the engine imported as a module imports it, rounds started together.
WRITER = """
import os, sys, time
sys.path.insert(0, os.path.join(sys.argv[1], "..", "module_utils"))
import datasafe_path
sys.path.insert(0, sys.argv[1])
import test_metrics
while not os.path.exists(sys.argv[3]):
    time.sleep(0.005)
test_metrics.write_rounds(sys.argv[2], sys.argv[4])
"""


def write_rounds(path, writer):
    labels = metrics.labels_key((("writer", writer),))
    total = ("datasafe_test_total", ())
    for n in range(1, ROUNDS + 1):

        def change(samples, n=n):
            samples[("datasafe_test_runs", labels)] = n
            samples[("datasafe_test_value", labels)] = "%s-%d" % (writer, n)
            # read-modify-write of one shared sample: any lost update shows in the total
            samples[total] = int(samples.get(total, 0)) + 1

        metrics.update(path, FAMILIES, change)


def _watch(path, stop, seen):
    """Read the file while it is being replaced: every read must see a whole file."""
    while not stop.is_set():
        try:
            with open(path) as handle:
                text = handle.read()
        except FileNotFoundError:
            continue
        seen.append(text.endswith("\n") and text.startswith("# HELP "))


def _run_writers(how, path):
    """Run the writers together, as processes or as threads of this process; True when all ended."""
    if how == "processes":
        go = os.path.join(os.path.dirname(os.path.dirname(path)), "go")
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, HERE, path, go, "w%d" % i]) for i in range(WRITERS)]
        open(go, "w").close()
        return [proc.wait(120) for proc in procs] == [0] * WRITERS
    go = threading.Event()

    def thread(writer):
        go.wait()
        write_rounds(path, writer)

    threads = [threading.Thread(target=thread, args=("w%d" % i,)) for i in range(WRITERS)]
    for worker in threads:
        worker.start()
    go.set()
    for worker in threads:
        worker.join(120)
    return not any(worker.is_alive() for worker in threads)


@pytest.mark.parametrize("how", ["processes", "threads"])
def test_concurrent_writers_do_not_lose_each_others_samples(tmp_path, how):
    path = str(tmp_path / "textfile" / "t.prom")
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_watch, args=(path, stop, seen))
    watcher.start()
    try:
        assert _run_writers(how, path)
    finally:
        stop.set()
        watcher.join()
    samples = metrics.read(path)
    assert samples[("datasafe_test_total", ())] == str(WRITERS * ROUNDS)
    for i in range(WRITERS):
        labels = (("writer", "w%d" % i),)
        assert samples[("datasafe_test_runs", labels)] == str(ROUNDS)
        assert samples[("datasafe_test_value", labels)] == "w%d-%d" % (i, ROUNDS)
    assert files(os.path.dirname(path)) == ["t.prom", "t.prom.lock"]
    assert seen and all(seen)
