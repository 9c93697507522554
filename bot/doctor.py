"""``parley doctor``: checks each thing Parley needs and says how to fix what is wrong."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.settings import Settings


@dataclass(frozen=True, slots=True)
class Finding:
    ok: bool
    what: str
    fix: str = ""


Check = Callable[[Settings], Awaitable[list[Finding]]]


async def check_database(settings: Settings) -> list[Finding]:
    from bot.store import Store, StoreError

    try:
        store = await Store.open(settings.database_url, migrate=False)
    except StoreError as exc:
        return [Finding(False, f"database: {exc}", "check DATABASE_URL and that the server is up")]
    try:
        await store.ping()
        if not await store.is_migrated():
            return [Finding(False, "database: migrations are not applied", "run `parley db upgrade`")]
    except Exception as exc:
        return [Finding(False, f"database: {type(exc).__name__}", "check DATABASE_URL")]
    finally:
        await store.close()
    return [Finding(True, "database: reachable and migrated")]


async def check_gateway(settings: Settings) -> list[Finding]:
    from bot.providers.errors import ProviderError
    from bot.providers.gateway import list_models

    if settings.apicore_api_key is None:
        return [
            Finding(False, "gateway: APICORE_API_KEY is not set", "set APICORE_API_KEY to your gateway key")
        ]
    try:
        names = await list_models(settings)
    except ProviderError as exc:
        return [
            Finding(
                False,
                f"gateway: {exc.user_message}",
                f"check APICORE_API_KEY and APICORE_BASE_URL ({settings.apicore_base_url})",
            )
        ]
    found = [Finding(True, f"gateway: key accepted, {len(names)} models offered")]
    if settings.parley_model not in names:
        found.append(
            Finding(
                False,
                f"gateway: the default model {settings.parley_model} is not offered",
                "set PARLEY_MODEL to one that `parley models` lists",
            )
        )
    return found


CORE_CHECKS: tuple[Check, ...] = (check_database, check_gateway)


async def run_checks(settings: Settings, extra: tuple[Check, ...] = ()) -> int:
    from bot.plugins import doctor_checks

    findings: list[Finding] = [Finding(True, "settings: valid")]
    for check in (*CORE_CHECKS, *doctor_checks(), *extra):
        findings.extend(await check(settings))
    for finding in findings:
        mark = "ok  " if finding.ok else "FAIL"
        line = f"{mark} {finding.what}"
        if not finding.ok and finding.fix:
            line += f"\n     fix: {finding.fix}"
        print(line)
    problems = sum(not f.ok for f in findings)
    if problems:
        print(f"{problems} problem(s) found", file=sys.stderr)
        return 1
    return 0
