"""Fixtures for the tests of tests/support (the same ones tests/conftest.py imports)."""

from tests.support.fixtures import *  # noqa: F403
