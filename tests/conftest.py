"""Test-wide guards: no proxies (slack_sdk honours them and ignores NO_PROXY), no real network."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.store_fixtures", "tests.cli_harness", "tests.tool_helpers"]

for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
