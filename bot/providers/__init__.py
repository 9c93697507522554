"""Talking to the APICore gateway: one provider per wire format behind one :class:`Gateway`.

How the core uses it::

    gateway = Gateway(settings)                      # once; ``await gateway.aclose()`` at shutdown
    request = gateway.request(model, system, turns)  # per-model options applied
    try:
        async for event in gateway.stream(request):  # == gateway.provider_for(model).stream(request)
            ...  # TextDelta / ThinkingDelta / ToolCallStarted / UsageReport, then exactly one Finish
    except ProviderError as exc:                     # only before the first token, after retries
        show(exc.user_message)

After the first token nothing is raised: a broken stream ends with ``Finish(outcome=TRUNCATED or
ERROR, error=…)``. A model that stops to call tools ends with ``Finish(COMPLETE,
tool_calls=(…))``; offer tools with ``gateway.request(…, tools=specs)`` and send results back as
``ToolResultPart``s in the next user turn (after the assistant turn's ``ToolCallPart``s).
Cancelling the consuming task, or ``aclose()`` on the iterator, closes the upstream response at
once.
"""

from bot.providers.anthropic import AnthropicProvider
from bot.providers.base import (
    ChatRequest,
    DocumentPart,
    Finish,
    ImagePart,
    Part,
    Provider,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ToolCall,
    ToolCallPart,
    ToolCallStarted,
    ToolResultPart,
    ToolSpec,
    Turn,
    UsageReport,
)
from bot.providers.errors import ProviderError
from bot.providers.gateway import Gateway, build_request
from bot.providers.openai_chat import OpenAIChatProvider
from bot.providers.policy import GatewayPolicy

__all__ = [
    "AnthropicProvider",
    "ChatRequest",
    "DocumentPart",
    "Finish",
    "Gateway",
    "GatewayPolicy",
    "ImagePart",
    "OpenAIChatProvider",
    "Part",
    "Provider",
    "ProviderError",
    "StreamEvent",
    "TextDelta",
    "TextPart",
    "ThinkingDelta",
    "ToolCall",
    "ToolCallPart",
    "ToolCallStarted",
    "ToolResultPart",
    "ToolSpec",
    "Turn",
    "UsageReport",
    "build_request",
]
