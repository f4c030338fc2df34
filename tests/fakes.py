"""Small fakes shared by the unit tests of pure logic."""


class FakeClock:
    """A monotonic clock that moves only when slept on: ``clock()`` reads it, ``clock.sleep(s)``
    advances it, so waits and deadlines are tested without waiting."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeRunner:
    """A ``run`` of runner.py's signature that answers from a script instead of running anything.

    ``answers`` maps an argv prefix (a tuple) to ``(rc, stdout, stderr)`` or to a callable
    ``answer(argv, data) -> (rc, stdout, stderr)``; the longest matching prefix wins. Every call
    is kept in ``calls`` as ``(argv, data, env)``; an argv nothing matches fails the test.
    """

    def __init__(self, answers=None):
        self.answers = dict(answers or {})
        self.calls = []

    def __call__(self, argv, data=None, env=None, cwd=None, timeout=None, binary=False):
        argv = list(argv)
        self.calls.append((argv, data, env))
        matches = [p for p in self.answers if tuple(argv[: len(p)]) == tuple(p)]
        if not matches:
            raise AssertionError("unexpected command %s" % argv)
        answer = self.answers[max(matches, key=len)]
        return answer(argv, data) if callable(answer) else answer

    def argvs(self):
        return [argv for argv, _, _ in self.calls]
