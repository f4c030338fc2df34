"""Fixtures shared by every test; the test bed itself lives in pgbed.py."""

import pytest
from pgbed import ThrowawayPostgres
from xdist_groups import expected_seconds, group_of_nodeid


@pytest.fixture(scope="module")
def throwaway_pg():
    """A seeded throwaway LMS database (scale 1), shared by the tests of one module."""
    pg = ThrowawayPostgres()
    try:
        pg.start().seed(scale=1)
        yield pg
    finally:
        pg.remove()


# -- spreading the suite over workers (make test: `pytest -n 3 --dist loadgroup`; see xdist_groups.py) ----
# pytest-xdist 3.8's own loadgroup cannot work under pytest 9.2: it tags a test's group by assigning
# item._nodeid, which pytest 9 no longer reads (nodeid comes from item._id), so every test went to
# any worker and each worker built its own fleet bed, one waiting behind another's lock. The
# scheduler below groups by test file (xdist_groups.py) from the node id alone, which every
# pytest-xdist scheduler receives; tests/test_xdist_groups.py runs a real distributed session to
# prove files stay together.
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileGroupScheduling(LoadScopeScheduling):
        """Whole groups (xdist_groups.py) to one worker each, longest expected first."""

        def _split_scope(self, nodeid):
            return group_of_nodeid(nodeid)

    config.option.loadscopereorder = False  # keep the collection's order: longest groups first
    return FileGroupScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """Longest expected groups first (stable): a long group started last would end the run alone."""
    items.sort(key=lambda item: -expected_seconds(group_of_nodeid(item.nodeid)))
