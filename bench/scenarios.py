"""The scenarios by name, with their default and quick sizes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench.config import Config, Result
from bench.core import long_thread_scenario, pdf_scenario, scale_scenario
from bench.files_memory import files_scenario
from bench.instances import shared_budget_scenario, slack_instances_scenario
from bench.on_platforms import discord_scenario, slack_scenario
from bench.provider import provider_scenario
from bench.render_cost import render_cost_scenario
from bench.tool_step import tools_scenario

# -- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str  # with "N" where the size goes
    full: int
    quick: int
    run: Callable[[Config, Path, str, int], Awaitable[Result]]
    about: str

    def label(self, n: int) -> str:
        if self.name.endswith("-N"):
            return self.name.removesuffix("N") + str(n)
        return self.name if n == self.full else f"{self.name} (N={n})"


async def _discord_one(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    return await discord_scenario(cfg, tmp, name, 1, 1)


async def _discord_channel(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    return await discord_scenario(cfg, tmp, name, n, 1)


async def _discord_across(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    return await discord_scenario(cfg, tmp, name, n, n)


async def _discord_shared(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    return await discord_scenario(cfg, tmp, name, n, 1, threads=False)


async def _slack_one(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    return await slack_scenario(cfg, tmp, name, 1)


async def _slack_workspace(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    return await slack_scenario(cfg, tmp, name, n)


async def _slack_native(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    return await slack_scenario(cfg, tmp, name, 1, native=True)


async def _slack_native_workspace(cfg: Config, tmp: Path, name: str, n: int) -> Result:
    return await slack_scenario(cfg, tmp, name, n, native=True)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("discord-one", 1, 1, _discord_one, "one Discord reply in a thread"),
    Scenario("discord-channel-N", 20, 5, _discord_channel, "N mentions in one channel: a thread each"),
    Scenario("discord-across-N", 50, 8, _discord_across, "N channels, one mention each"),
    Scenario(
        "discord-shared-N", 10, 3, _discord_shared, "N mentions in a channel without threads: one budget"
    ),
    Scenario("slack-one", 1, 1, _slack_one, "one Slack reply in a thread"),
    Scenario(
        "slack-workspace-N", 10, 3, _slack_workspace, "N replies sharing the workspace chat.update budget"
    ),
    Scenario("slack-native-stream", 1, 1, _slack_native, "one Slack reply with native streaming"),
    Scenario(
        "slack-instances-N",
        10,
        3,
        slack_instances_scenario,
        "slack-workspace-N over three instances on one PostgreSQL (PARLEY_BENCH_POSTGRES_URL)",
    ),
    Scenario(
        "shared-budget",
        2000,
        50,
        shared_budget_scenario,
        "a shared budget's booking on PostgreSQL: latency, and bookings a second it carries",
    ),
    Scenario(
        "slack-native-N", 10, 3, _slack_native_workspace, "N native streams sharing the workspace's budgets"
    ),
    Scenario(
        "long-thread", 10_000, 2_000, long_thread_scenario, "one more turn in a thread of N stored messages"
    ),
    Scenario("pdf-30mb", 30, 2, pdf_scenario, "an N MB PDF through the file pipeline (peak memory)"),
    Scenario("files-memory", 30, 2, files_scenario, "an N MB XLSX and a 20-minute voice note (peak memory)"),
    Scenario("scale-500", 500, 40, scale_scenario, "N concurrent replies, core only (in-memory surface)"),
    Scenario("provider-overhead", 5, 2, provider_scenario, "provider layer vs raw httpx, per token"),
    Scenario(
        "discord-tools-N",
        10,
        3,
        tools_scenario,
        "N replies with one read_url step each vs N without (Discord)",
    ),
    Scenario("render-cost", 250, 20, render_cost_scenario, "the renderer alone: CPU per token, N replies"),
)


def find(name: str) -> tuple[Scenario, int | None]:
    """A scenario by name; a trailing number sets N (``discord-channel-12``)."""
    for s in SCENARIOS:
        if name == s.name or name == s.name.removesuffix("-N"):
            return s, None
        if s.name.endswith("-N"):
            head = s.name.removesuffix("N")
            tail = name.removeprefix(head)
            if name.startswith(head) and tail.isdigit():
                return s, int(tail)
    raise KeyError(name)
