"""Declaring tools and replaying tool turns: the rules both wire formats share.

- **Schemas.** A tool's ``parameters`` (often an MCP server's own JSON Schema) are trimmed to what
  both formats accept as a function's arguments: an ``object`` at the root (Anthropic answers
  ``input_schema.type: Field required`` without one, and refuses ``anyOf``/``oneOf``/``allOf`` at the
  top level; OpenAI wants ``type: "object"`` too), so a root union of object schemas is merged
  into one object whose properties are all the members' and whose required ones are those every
  member requires; ``$schema``, ``$id`` and ``$comment`` at the root are dropped (metadata some
  upstreams refuse and none needs), and so are ``$defs``/``definitions`` nothing refers to.
- **Ids.** A call's id is replayed in the same or the other format, where it must be valid:
  Anthropic's match ``^[a-zA-Z0-9_-]+$`` and OpenAI refuses ids over 40 characters. An id that
  fits both is kept; any other is replaced by ``call_`` and a hash of it, the same for the call
  and its result, so the pair still matches.
- **Arguments.** Replayed in OpenAI format as the JSON text the model wrote when that is a JSON
  object, else ``"{}"``: providers refuse malformed ``function.arguments`` in history (Qwen:
  "The "function.arguments" parameter … must be in JSON format"). The model already saw the error
  result the core gave for it.
- **History without offers.** Anthropic refuses ``tool_use``/``tool_result`` blocks, and calls to
  tools not in ``tools``, so a tool named in the history but not offered now is declared with a
  stub (its name, a note not to call it, an empty object schema).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.providers.base import ToolCall, ToolCallPart, ToolResultPart, ToolSpec, Turn

_ID = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")
_DROP_AT_ROOT = ("$schema", "$id", "$comment")
_UNIONS = ("anyOf", "oneOf", "allOf")
_DEFINITIONS = ("$defs", "definitions")
STUB_DESCRIPTION = "No longer available: do not call it."
EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


def wire_id(ident: str) -> str:
    """``ident`` if both formats accept it, else a stand-in derived from it alone."""
    if _ID.match(ident):
        return ident
    return "call_" + hashlib.sha256(ident.encode("utf-8", "replace")).hexdigest()[:24]


def openai_arguments(call: ToolCall) -> str:
    """The arguments to replay in OpenAI format: the model's JSON object text, or ``{}``."""
    if call.parsed() is None or not call.arguments.strip():
        return "{}"
    return call.arguments


def result_text(part: ToolResultPart) -> str:
    """A result as text for a format with no error flag: a failure says it failed."""
    if not part.is_error:
        return part.content
    return f"Error: {part.content}" if part.content else "Error: the tool failed."


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _names(value: object) -> list[str]:
    return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []


def _merged_union(schema: dict[str, Any]) -> dict[str, Any]:
    members = [_mapping(m) for key in _UNIONS for m in schema.pop(key, None) or ()]
    properties = dict(_mapping(schema.get("properties")))
    for member in members:
        for name, value in _mapping(member.get("properties")).items():
            properties.setdefault(name, value)
    schema["properties"] = properties
    everywhere = set.intersection(*(set(_names(m.get("required"))) for m in members)) if members else set()
    own = _names(schema.get("required"))
    required = [*own, *sorted(everywhere - set(own))]
    if required:
        schema["required"] = required
    return schema


def object_schema(parameters: Mapping[str, Any] | object) -> dict[str, Any]:
    """``parameters`` trimmed to an object schema both formats accept (see the module notes)."""
    if not isinstance(parameters, Mapping):
        return dict(EMPTY_OBJECT)
    schema = {key: value for key, value in parameters.items() if key not in _DROP_AT_ROOT}
    if any(key in schema for key in _UNIONS):
        schema = _merged_union(schema)
    schema["type"] = "object"
    if not isinstance(schema.get("properties"), Mapping):
        schema["properties"] = {}
    if '"$ref"' not in json.dumps(schema, default=str):
        for key in _DEFINITIONS:
            schema.pop(key, None)
    return schema


def called_names(turns: Iterable[Turn]) -> list[str]:
    """The tools the history's calls named, first use first, each once."""
    seen: dict[str, None] = {}
    for turn in turns:
        for part in turn.parts:
            if isinstance(part, ToolCallPart) and part.call.name:
                seen.setdefault(part.call.name)
    return list(seen)


def has_tool_parts(turns: Iterable[Turn]) -> bool:
    return any(isinstance(part, ToolCallPart | ToolResultPart) for turn in turns for part in turn.parts)


def with_stubs(offered: Sequence[ToolSpec], turns: Sequence[Turn]) -> tuple[ToolSpec, ...]:
    """``offered`` plus a stub for each tool the history calls that is not offered now."""
    names = {spec.name for spec in offered}
    stubs = tuple(
        ToolSpec(name, STUB_DESCRIPTION, EMPTY_OBJECT) for name in called_names(turns) if name not in names
    )
    return (*offered, *stubs)
