"""Tools the model may call: the registry, the built-ins (``read_url``, ``generate_image``) and
MCP servers' tools.

How the core drives them (one turn's tool step)::

    toolbox = build_toolbox(settings, gateway)     # once; await toolbox.start() / aclose()
    request = ChatRequest(..., tools=toolbox.specs())
    for call in finish.tool_calls:                  # in parallel, if the model made several
        status = toolbox.status(call)               # "Reading example.com/news"
        outcome = await toolbox.run(call, ToolContext(key, author, timeout=time_left))
        # outcome.result: the ToolResultPart for the next user turn (never raises; Stop cancels)
        # outcome.files: pictures to attach; outcome.usage: images to record
"""

from bot.tools.base import (
    OutFile,
    ServerStatus,
    Tool,
    ToolContext,
    ToolFailed,
    ToolOutcome,
    ToolSource,
    ToolUsage,
)
from bot.tools.build import build_toolbox, probe
from bot.tools.registry import ToolBox, ToolInfo

__all__ = [
    "OutFile",
    "ServerStatus",
    "Tool",
    "ToolBox",
    "ToolContext",
    "ToolFailed",
    "ToolInfo",
    "ToolOutcome",
    "ToolSource",
    "ToolUsage",
    "build_toolbox",
    "probe",
]
