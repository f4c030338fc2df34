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
