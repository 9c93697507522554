"""``parley``: the command line. Every error a user can cause ends in one clear line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

from bot.errors import UserFacingError
from bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("parley")


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed, else None (asyncio's own).

    With hundreds of replies streaming, most of ``parley run``'s CPU goes to waking the loop for
    each token's network chunk; uvloop does that part in C (bench scale-500: about 17% less CPU
    per token than asyncio's loop). ``PARLEY_UVLOOP=false`` keeps asyncio's loop.
    """
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_factory_for(command: str, settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    # Only the long-running server needs the faster loop; one-off commands keep asyncio's.
    return event_loop_factory() if command == "run" and settings.parley_uvloop else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="An LLM in your team chat.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="start the Slack/Discord adapters and the HTTP server")
    console = commands.add_parser("console", help="chat from the terminal")
    console.add_argument("--thread", help="continue the named conversation")
    console.add_argument("--model", help="the model to use for this session")
    console.add_argument(
        "--attach", action="append", default=[], metavar="FILE", help="attach a file to the first turn"
    )
    commands.add_parser("models", help="list the models the gateway offers")
    commands.add_parser("usage", help="show the gateway's usage and quota, and Parley's own totals")
    commands.add_parser("tools", help="list the tools the model may call (built-in and MCP servers')")
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply pending migrations")
    commands.add_parser("doctor", help="check settings, database, gateway and platform credentials")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        from bot import logs

        logs.configure(settings, level="WARNING" if args.command != "run" else None)
        with asyncio.Runner(loop_factory=loop_factory_for(args.command, settings)) as runner:
            return runner.run(_dispatch(args, settings))
    except SettingsError as exc:
        if args.command == "doctor":
            from bot.doctor import report_invalid_settings

            return report_invalid_settings(exc.problems)
        for line in exc.problems:
            print(f"parley: {line}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A bug, not a user error: still one line, with the way to see the whole story.
        log.debug("unexpected failure", exc_info=True)
        print(
            f"parley: unexpected error ({type(exc).__name__}: {exc}); "
            "run with PARLEY_LOG_LEVEL=DEBUG for details",
            file=sys.stderr,
        )
        return 1


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from bot import commands

    try:
        if args.command == "run":
            return await commands.run(settings)
        if args.command == "console":
            return await commands.console(settings, thread=args.thread, model=args.model, attach=args.attach)
        if args.command == "models":
            return await commands.models(settings)
        if args.command == "usage":
            return await commands.usage(settings)
        if args.command == "tools":
            return await commands.tools(settings)
        if args.command == "db":
            return await commands.db_upgrade(settings)
        if args.command == "doctor":
            return await commands.doctor(settings)
    except UserFacingError as exc:
        raise CliError(str(exc)) from None
    raise CliError(f"unknown command {args.command}")
