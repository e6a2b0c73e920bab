"""Fixtures for the keys' tests: tests/tre/keys/fixtures.py, shared with the secured
data layer's tests. Test modules take them as fixtures rather than importing them.
"""

from tests.tre.keys.fixtures import *  # noqa: F403
