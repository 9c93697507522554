"""What an idle ``parley run`` process loads, and the event loop it runs on."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from bot import cli
from bot.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def _loaded_after(code: str, modules: list[str]) -> dict[str, bool]:
    probe = f"import sys\n{code}\nprint(','.join(str(m in sys.modules) for m in {modules!r}))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return dict(zip(modules, (v == "True" for v in done.stdout.strip().split(",")), strict=True))


def test_the_core_does_not_load_pypdf_until_a_pdf_arrives() -> None:
    # pypdf with cryptography is ~16 MB of resident memory that a bot without PDFs never needs.
    loaded = _loaded_after(
        "import bot.commands, bot.runtime, bot.http, bot.plugins, bot.files",
        ["bot.runtime", "bot.files.pdf", "pypdf", "cryptography"],
    )
    assert loaded == {"bot.runtime": True, "bot.files.pdf": True, "pypdf": False, "cryptography": False}


def test_reading_a_pdf_still_loads_pypdf_on_demand() -> None:
    loaded = _loaded_after(
        "from bot.files.pdf import inspect_pdf\n"
        "from bot.files.errors import CorruptPdf\n"
        "try:\n    inspect_pdf(b'%PDF-1.4 not really', name='x.pdf')\n"
        "except CorruptPdf:\n    pass",
        ["pypdf"],
    )
    assert loaded == {"pypdf": True}


def test_parley_run_uses_uvloop_when_it_is_installed() -> None:
    uvloop = pytest.importorskip("uvloop")
    factory = cli.event_loop_factory()
    assert factory is uvloop.new_event_loop
    loop = factory()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert loop.run_until_complete(asyncio.sleep(0, result=42)) == 42
    finally:
        loop.close()


def test_only_parley_run_takes_uvloop_and_parley_uvloop_false_keeps_asyncio(tmp_path: Path) -> None:
    uvloop = pytest.importorskip("uvloop")
    settings = load_settings({}, cwd=tmp_path)
    assert cli.loop_factory_for("run", settings) is uvloop.new_event_loop
    assert cli.loop_factory_for("console", settings) is None
    off = load_settings({"PARLEY_UVLOOP": "false"}, cwd=tmp_path)
    assert cli.loop_factory_for("run", off) is None


def test_without_uvloop_asyncio_s_own_loop_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes `import uvloop` raise ImportError
    assert cli.event_loop_factory() is None


def test_opening_a_migrated_store_does_not_load_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    opening = (
        "import asyncio\nfrom bot.store import Store\n"
        "async def main():\n"
        f"    store = await Store.open({url!r})\n"
        "    await store.close()\n"
        "asyncio.run(main())"
    )
    # The first start migrates (Alembic loads); later starts find the schema at head and don't.
    assert _loaded_after(opening, ["alembic"]) == {"alembic": True}
    assert _loaded_after(opening, ["alembic"]) == {"alembic": False}


def test_the_head_without_alembic_is_alembics_head() -> None:
    import migrations
    from bot.store import db

    assert db.head_revision() == migrations.HEAD
