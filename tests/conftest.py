"""Fixtures shared by several test modules (a module's own fixture of the same name wins).

The harness itself lives in tests/helpers.py (``from helpers import ...``): pytest puts
this directory on ``sys.path`` because it holds this conftest and is not a package.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from rxgpt._collector import freeze
from rxgpt.mock import MockServer

MOCK_TOKENS = 12


#: At the start of a test module, the most objects the collector's oldest generation may
#: hold before what is alive is frozen (see :func:`_a_small_heap_to_collect`).
UNFROZEN_OBJECTS = 50_000


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze the collected suite's heap (test modules, the SDKs, hypothesis): ~350k objects.

    Otherwise every full collection walks them all, a pause of up to 0.4 s on a 2-core
    machine that stalls whichever test is running; tests' deadlines are tenths of a second.
    """
    freeze()


@pytest.fixture(autouse=True, scope="module")
def _a_small_heap_to_collect() -> None:
    """Between modules, freeze what earlier ones left alive (lazily imported SDK modules,
    hypothesis' caches: the heap doubles over the suite) once it is more than
    :data:`UNFROZEN_OBJECTS`, so that no full collection inside a test walks it."""
    if len(gc.get_objects(generation=2)) > UNFROZEN_OBJECTS:
        freeze()


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Nothing frozen during the test (as in a program of the user's); the suite's freeze after."""
    gc.unfreeze()
    try:
        yield
    finally:
        freeze()


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer(tokens=MOCK_TOKENS) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session
