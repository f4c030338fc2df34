import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources"))

from stackvars import stack  # noqa: E402,F401  (a fixture)
