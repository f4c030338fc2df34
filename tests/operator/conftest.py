"""Fixtures of the operator's playbooks: one throwaway deployment for the whole package."""

import pytest
from opbed import LmsStack


@pytest.fixture(scope="session")
def lms():
    stack = LmsStack()
    try:
        yield stack.start()
    finally:
        stack.remove()
