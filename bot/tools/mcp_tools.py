"""An MCP server's tools as Parley offers them: ``<server>__<tool>``, schema passed through,
results as text (other content described, not passed on)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import mcp_types

from bot.providers.base import ToolSpec
from bot.tools.base import Output, ServerStatus, Tool, ToolContext
from bot.tools.mcp_server import CallFailed, McpServer

# What both wire formats accept in a function name.
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
MAX_NAME = 64
_DESCRIPTION_CHARS = 1024


def offered_name(server: str, tool: str) -> str:
    """``docs__search``; characters the wire formats refuse (MCP allows dots) become ``_``."""
    return f"{server}__{_NAME_CHARS.sub('_', tool)}"[:MAX_NAME]


def _schema(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The tool's input schema as given, with the object root both formats require."""
    schema = dict(raw)
    schema.setdefault("type", "object")
    if schema.get("type") == "object":
        schema.setdefault("properties", {})
    return schema


def _size(encoded: str) -> str:
    size = len(encoded) * 3 // 4
    return f"{max(1, round(size / 1024))} KB" if size >= 1024 else f"{size} bytes"


def _describe_resource(block: mcp_types.EmbeddedResource) -> str:
    resource = block.resource
    if isinstance(resource, mcp_types.TextResourceContents):
        return f"[resource {resource.uri}]\n{resource.text}"
    kind = resource.mime_type or "binary data"
    return f"[a file, {resource.uri} ({kind}), {_size(resource.blob)}: not shown]"


def content_text(result: mcp_types.CallToolResult) -> str:
    """The result as text: text blocks as they are, anything else described in brackets."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent):
            parts.append(f"[an image ({block.mime_type}), {_size(block.data)}: not shown]")
        elif isinstance(block, mcp_types.AudioContent):
            parts.append(f"[an audio clip ({block.mime_type}), {_size(block.data)}: not played]")
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[a link to {block.name}: {block.uri}]")
        elif isinstance(block, mcp_types.EmbeddedResource):
            parts.append(_describe_resource(block))
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return "\n\n".join(parts) if parts else "(the tool returned nothing)"


class McpTool:
    """One tool of one server, callable while the server is up."""

    timeout: float | None = None

    def __init__(self, server: McpServer, tool: mcp_types.Tool, name: str) -> None:
        self._server = server
        self._tool = tool
        description = (
            tool.description or tool.title or f"The {tool.name} tool of the {server.name} MCP server."
        )
        self._spec = ToolSpec(name, description[:_DESCRIPTION_CHARS], _schema(tool.input_schema))

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    @property
    def source(self) -> str:
        return self._server.name

    def status(self, arguments: Mapping[str, Any]) -> str:
        return f"Asking {self._server.name}: {self._tool.name}"

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> Output:
        source = f"{self._server.name}: {self._tool.name}"
        try:
            result = await self._server.call(self._tool.name, arguments)
        except CallFailed as exc:
            if exc.from_server:
                return Output(text=exc.text, source=source, is_error=True)
            return Output(text=exc.text, source=source, is_error=True, trusted=True)
        return Output(text=content_text(result), source=source, is_error=result.is_error)


class McpSource:
    """A server's tools for the :class:`~bot.tools.registry.ToolBox` (a ``ToolSource``)."""

    def __init__(self, server: McpServer) -> None:
        self.server = server

    def tools(self, taken: set[str]) -> list[Tool]:
        tools: list[Tool] = []
        for tool in self.server.listed:
            name = offered_name(self.server.name, tool.name)
            if name in taken:
                continue
            taken.add(name)
            tools.append(McpTool(self.server, tool, name))
        return tools

    def status(self) -> ServerStatus:
        return self.server.status()

    async def start(self) -> None:
        await self.server.start()

    async def aclose(self) -> None:
        await self.server.aclose()
