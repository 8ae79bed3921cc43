"""Fixtures shared by several test modules (a module's own fixture of the same name wins).

The harness itself lives in tests/helpers.py (``from helpers import ...``): pytest puts
this directory on ``sys.path`` because it holds this conftest and is not a package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from rxgpt.mock import MockServer

MOCK_TOKENS = 12


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer(tokens=MOCK_TOKENS) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session
