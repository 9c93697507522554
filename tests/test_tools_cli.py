"""``parley tools``, the doctor's MCP check, and a console turn with a broken server configured."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.doctor import check_mcp
from bot.logs import secrets_of
from bot.settings import SettingsError, load_settings
from tests.cli_harness import one_clear_line, parley

SERVER = Path(__file__).resolve().parent / "fakes" / "mcp_server.py"
DOCS = (
    f"[mcp.docs]\ncommand = {str(sys.executable)!r}\nargs = [{str(SERVER)!r}]\n"
    'tools = ["search", "lookup.page"]\n'
)
GONE = '[mcp.gone]\nurl = "http://127.0.0.1:9/mcp"\nheaders = { Authorization = "Bearer gone-token-77" }\n'


def test_parley_tools_lists_built_ins_and_a_servers_tools(tmp_path: Path) -> None:
    (tmp_path / "parley.toml").write_text(DOCS)
    done = parley("tools", cwd=tmp_path, env={})
    assert done.returncode == 0, done.stderr
    rows = [line.split(None, 2) for line in done.stdout.splitlines()]
    assert [(name, source) for name, source, _ in rows] == [
        ("read_url", "built-in"),
        ("generate_image", "built-in"),
        ("docs__search", "docs"),
        ("docs__lookup_page", "docs"),
    ]
    assert rows[2][2] == "Search the team's documents and return the best matches."
    assert done.stderr == ""


def test_parley_tools_names_a_server_it_cannot_reach(tmp_path: Path) -> None:
    (tmp_path / "parley.toml").write_text(DOCS + GONE)
    done = parley("tools", cwd=tmp_path, env={"PARLEY_TOOLS": "read_url"})
    assert done.returncode == 1
    line = one_clear_line(done.stderr)
    assert line.startswith("parley: cannot reach the MCP server gone (ConnectError: ")
    assert "gone-token-77" not in done.stderr + done.stdout
    assert [line.split()[0] for line in done.stdout.splitlines()] == [
        "read_url",
        "docs__search",
        "docs__lookup_page",
    ]


def test_parley_tools_with_nothing_offered(tmp_path: Path) -> None:
    done = parley("tools", cwd=tmp_path, env={"PARLEY_TOOLS": "none"})
    assert done.returncode == 0
    assert done.stdout == ""
    assert "no tools are offered" in done.stderr


def test_a_console_turn_still_works_with_a_broken_server(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "parley.toml").write_text(GONE + '[mcp.nocmd]\ncommand = "/nonexistent/mcp-server"\n')
    done = parley("console", cwd=tmp_path, env=env, stdin="hello there\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "You said: hello there\n\n"
    assert "MCP server gone" in done.stderr and "gone-token-77" not in done.stderr


async def test_the_doctor_check_reports_each_server(tmp_path: Path) -> None:
    (tmp_path / "parley.toml").write_text(DOCS + GONE)
    findings = await check_mcp(load_settings({}, cwd=tmp_path))
    assert [(f.ok, f.what.split(":")[1].strip()) for f in findings] == [
        (True, "MCP server docs (stdio)"),
        (False, "MCP server gone (http)"),
    ]
    assert findings[0].what.endswith("reached, 2 tools offered")
    assert "check [mcp.gone] in parley.toml: the url and headers" in findings[1].fix
    assert findings[1].warns and not findings[1].failure  # the bot answers without it: exit 0
    assert await check_mcp(load_settings({}, cwd=tmp_path / "nowhere")) == []


def test_mcp_credentials_are_secrets_and_never_echoed(tmp_path: Path) -> None:
    (tmp_path / "parley.toml").write_text(
        GONE
        + '[mcp.docs]\ncommand = "x"\nenv = { DOCS_TOKEN = "docs-token-0451" }\n'
        + '[mcp.wiki]\nurl = "https://bot:pa55word@wiki.example/mcp?key=k-31337"\n'
    )
    found = set(secrets_of(load_settings({}, cwd=tmp_path)))
    assert {"Bearer gone-token-77", "gone-token-77", "docs-token-0451", "pa55word", "key=k-31337"} <= found
    (tmp_path / "parley.toml").write_text('[mcp.docs]\ncommand = "x"\nenv = { DOCS_TOKEN = 86753090 }\n')
    with pytest.raises(SettingsError) as raised:
        load_settings({}, cwd=tmp_path)
    assert raised.value.problems == ["[mcp.docs].env: Input should be a valid string"]
    (tmp_path / "parley.toml").write_text('[mcp.docs]\nurl = "https://x/mcp"\ncommand = "x"\n')
    with pytest.raises(SettingsError) as raised:
        load_settings({}, cwd=tmp_path)
    assert raised.value.problems == [
        "[mcp.docs]: needs either command (a stdio server) or url (a streamable-HTTP server)"
    ]
