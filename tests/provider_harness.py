"""The two fixtures every provider test module has, named once.

``gw`` is the fake gateway (in the test's event loop) and ``gateway`` Parley's real gateway
client pointed at it, with the module's retry and timeout policy::

    gw, gateway = gateway_fixtures(POLICY)             # at module level; tests ask for gw, gateway
    gw, gateway = gateway_fixtures(FAST, api_key=KEY)  # the fake's options after the policy
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.providers import Gateway, GatewayPolicy
from tests.fakes.gateway import FakeGateway


def gateway_fixtures(policy: GatewayPolicy, **fake: Any) -> tuple[Any, Any]:
    """The fixtures ``gw`` and ``gateway``; ``fake``: the :class:`FakeGateway`'s options."""

    @pytest.fixture(name="gw")
    async def fake_gateway() -> AsyncIterator[FakeGateway]:
        async with FakeGateway(**fake) as server:
            yield server

    @pytest.fixture(name="gateway")
    async def client(gw: FakeGateway) -> AsyncIterator[Gateway]:
        async with gw.client(policy) as real:
            yield real

    return fake_gateway, client
