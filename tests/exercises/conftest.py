"""Students' entry point: ``pytest --solution PATH tests/exercises``.

The ``--solution`` option and the ``graded_solution`` fixture come from :mod:`grading.pytest_solution`
(registered as a pytest11 plugin); this conftest registers them too when the plugin is not installed
(when both are present the option is added once).
"""

from __future__ import annotations

import pytest

from grading.pytest_solution import graded_solution  # noqa: F401  (the fixture)
from grading.pytest_solution import pytest_addoption as _addoption


def pytest_addoption(parser: pytest.Parser) -> None:
    try:
        _addoption(parser)
    except ValueError:  # already added by the installed plugin
        pass
