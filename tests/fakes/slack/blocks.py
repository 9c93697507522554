"""Block Kit rules for the interactive blocks the fake stores: ``actions`` (buttons) and
``context_actions`` (Slack's ``feedback_buttons`` and ``icon_button``).

Limits are Block Kit's documented ones: ``block_id`` and ``action_id`` 255 characters, a button's
text 75 and its value 2000, 25 elements in an actions block, 5 in a context actions block.
Each broken rule is one message in Slack's ``invalid_blocks`` shape, with its JSON pointer.
"""

from __future__ import annotations

from typing import Any

ID_MAX = 255
TEXT_MAX = 75
VALUE_MAX = 2000
ACTIONS_MAX = 25
CONTEXT_ACTIONS_MAX = 5
CONTEXT_ACTION_TYPES = frozenset({"feedback_buttons", "icon_button"})


def _too_long(value: Any, limit: int, pointer: str) -> list[str]:
    if value is not None and len(str(value)) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{pointer}]"]
    return []


def _plain_text(text: Any, pointer: str) -> list[str]:
    if not isinstance(text, dict) or text.get("type") != "plain_text" or "text" not in text:
        return [f"must be a plain_text object [json-pointer:{pointer}]"]
    return _too_long(text["text"], TEXT_MAX, f"{pointer}/text")


def _button(button: Any, pointer: str, *, value_required: bool) -> list[str]:
    if not isinstance(button, dict):
        return [f"must be an object [json-pointer:{pointer}]"]
    errors = _plain_text(button.get("text"), f"{pointer}/text")
    if value_required and "value" not in button:
        errors.append(f"missing required field: value [json-pointer:{pointer}]")
    errors += _too_long(button.get("value"), VALUE_MAX, f"{pointer}/value")
    errors += _too_long(button.get("accessibility_label"), TEXT_MAX, f"{pointer}/accessibility_label")
    return errors


def _element(element: Any, pointer: str, allowed: frozenset[str] | None) -> list[str]:
    if not isinstance(element, dict) or "type" not in element:
        return [f"must be an element object [json-pointer:{pointer}]"]
    kind = element["type"]
    if allowed is not None and kind not in allowed:
        return [f"must be one of {sorted(allowed)} [json-pointer:{pointer}/type]"]
    errors = _too_long(element.get("action_id"), ID_MAX, f"{pointer}/action_id")
    if kind == "feedback_buttons":
        for side in ("positive_button", "negative_button"):
            if side not in element:
                errors.append(f"missing required field: {side} [json-pointer:{pointer}]")
            else:
                errors += _button(element[side], f"{pointer}/{side}", value_required=True)
    elif kind in ("button", "icon_button"):
        errors += _button(element, pointer, value_required=False)
    return errors


def interactive_block_errors(index: int, block: dict[str, Any]) -> list[str]:
    """What is wrong with an ``actions`` or ``context_actions`` block (empty list: nothing)."""
    kind = block.get("type")
    pointer = f"/blocks/{index}"
    errors = _too_long(block.get("block_id"), ID_MAX, f"{pointer}/block_id")
    if kind not in ("actions", "context_actions"):
        return errors
    elements = block.get("elements")
    limit = ACTIONS_MAX if kind == "actions" else CONTEXT_ACTIONS_MAX
    if not isinstance(elements, list) or not elements:
        return [*errors, f"must provide at least 1 item [json-pointer:{pointer}/elements]"]
    if len(elements) > limit:
        errors.append(f"must be less than {limit + 1} items [json-pointer:{pointer}/elements]")
    allowed = CONTEXT_ACTION_TYPES if kind == "context_actions" else None
    for j, element in enumerate(elements):
        errors += _element(element, f"{pointer}/elements/{j}", allowed)
    return errors
