"""What each ``parley`` command does, once the settings are loaded."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from bot.errors import UserFacingError
from bot.providers.errors import ProviderError
from bot.runtime import Runtime
from bot.settings import Settings, SettingsError
from bot.store import StoreError

log = logging.getLogger("parley")


def _gateway_error(exc: ProviderError, settings: Settings) -> UserFacingError:
    cause = exc.user_message.rstrip(".")
    if exc.status:
        cause += f" (HTTP {exc.status})"
    return UserFacingError(f"{cause} — gateway {settings.apicore_base_url}")


async def _runtime(settings: Settings) -> Runtime:

    try:
        return await Runtime.create(settings)
    except StoreError as exc:
        raise UserFacingError(str(exc)) from None


async def console(settings: Settings, *, thread: str | None, model: str | None, attach: Sequence[str]) -> int:
    from bot.plugins import console_main

    settings.require_api_key()
    runtime = await _runtime(settings)
    try:
        code: int = await console_main()(runtime, thread=thread, model=model, attach=list(attach))
        return code
    finally:
        await runtime.aclose()


async def models(settings: Settings) -> int:
    from bot.providers.gateway import list_models

    settings.require_api_key()
    try:
        names = await list_models(settings)
    except ProviderError as exc:
        raise _gateway_error(exc, settings) from None
    for name in names:
        print(name)
    return 0


async def usage(settings: Settings) -> int:
    from bot.providers.gateway import billing
    from bot.store import Store

    settings.require_api_key()
    try:
        info = await billing(settings)
    except ProviderError as exc:
        raise _gateway_error(exc, settings) from None
    for label, value in info.items():
        print(f"{label}: {value}")
    try:
        store = await Store.open(settings.database_url, migrate=True)
    except StoreError as exc:
        raise UserFacingError(str(exc)) from None
    try:
        print("Parley's own totals (input / output / thinking tokens; pictures tools had made):")
        for row in await store.usage.by_model():
            tokens = f"{row.input_tokens} / {row.output_tokens} / {row.thinking_tokens}"
            pictures = f", {row.images} picture{'' if row.images == 1 else 's'}" if row.images else ""
            print(f"  {row.model}: {tokens}{pictures}")
        votes = await store.feedback.by_model()
        print("Feedback on answers (each person's current vote per answer):")
        for total in votes:
            print(f"  {total.model or 'unknown model'}: {total.up} up / {total.down} down")
        if not votes:
            print("  no votes yet")
    finally:
        await store.close()
    return 0


async def tools(settings: Settings) -> int:
    """Every tool offered, one a line (name, source, what it does); exit 1 naming each MCP
    server that could not be reached and why."""
    from bot.tools import probe

    listing, servers = await probe(settings)
    width = max((len(info.name) for info in listing), default=0)
    source_width = max((len(info.source) for info in listing), default=0)
    for info in listing:
        print(f"{info.name:<{width}}  {info.source:<{source_width}}  {info.summary}".rstrip())
    if not listing:
        print("no tools are offered (PARLEY_TOOLS=none and no [mcp.NAME] servers)", file=sys.stderr)
    down = [server for server in servers if not server.up]
    if down:
        causes = "; ".join(f"{server.name} ({server.error})" for server in down)
        noun = "server" if len(down) == 1 else "servers"
        raise UserFacingError(f"cannot reach the MCP {noun} {causes}")
    return 0


async def db_upgrade(settings: Settings) -> int:
    from bot.store import upgrade_async

    try:
        await upgrade_async(settings.database_url)
    except StoreError as exc:
        raise UserFacingError(str(exc)) from None
    print("database is up to date", file=sys.stderr)
    return 0


async def doctor(settings: Settings) -> int:
    from bot.doctor import run_checks

    return await run_checks(settings)


async def run(settings: Settings) -> int:
    from bot.http import HttpServer
    from bot.plugins import adapter_factories

    settings.require_api_key()
    if not (settings.slack_enabled() or settings.discord_enabled()):
        raise SettingsError(
            [
                "no platform credentials: set DISCORD_BOT_TOKEN, or SLACK_BOT_TOKEN with "
                "SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)"
            ]
        )
    runtime = await _runtime(settings)
    adapters = []
    server = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for name, factory in adapter_factories().items():
            adapter = factory(runtime.adapter_context())
            if adapter is not None:
                adapters.append(adapter)
                log.info("starting the %s adapter", name)
        server = HttpServer(runtime, adapters)
        try:
            await server.start(settings.parley_http_host, settings.parley_http_port)
        except RuntimeError as exc:
            raise UserFacingError(str(exc)) from None
        for adapter in adapters:
            await adapter.start()
        log.info("Parley is running")
        await stop.wait()
        log.info("shutting down: finishing replies in flight")
        for adapter in adapters:
            await adapter.stop_intake()
        await runtime.service.drain(settings.parley_shutdown_deadline)
        return 0
    finally:
        for adapter in adapters:
            try:
                await adapter.stop()
            except Exception:
                log.exception("stopping %s", adapter.name)
        if server is not None:
            await server.stop()
        await runtime.aclose()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
