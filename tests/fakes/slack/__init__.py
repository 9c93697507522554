"""A loopback fake of Slack for tests and benchmarks, driven by the real slack_sdk / slack_bolt.

One aiohttp server on 127.0.0.1 (random port) serves the Web API (``/api/<method>``), Socket Mode
(``/socket``), private file downloads (``/files-pri/...``), upload URLs (``/upload/v1/...``) and
``response_url`` endpoints; the fake also delivers events to one or several app instances over
HTTP, signed like Slack.

Start it
--------
::

    async with FakeSlack() as fs:                 # in the test's event loop
        client = AsyncWebClient(token=fs.bot_token, base_url=fs.api_url)

    with FakeSlack.in_thread() as fs:             # own loop in a thread (subprocess tests)
        env = {"SLACK_API_URL": fs.api_url, "SLACK_BOT_TOKEN": fs.bot_token, ...}
        fs.run(fs.deliver_event(fs.app_mention("hi")))   # call coroutines from this thread

Point slack-bolt at it
----------------------
::

    client = AsyncWebClient(token=fs.bot_token, base_url=fs.api_url)
    app = AsyncApp(client=client, signing_secret=fs.signing_secret)
    # Socket Mode: the handler uses app.client for apps.connections.open
    handler = AsyncSocketModeHandler(app, fs.app_token)
    await handler.connect_async(); await fs.wait_for_socket()
    # HTTP mode: serve app.web_app() (path /slack/events) on 127.0.0.1 and set fs.events_url

Clear HTTP(S)_PROXY in the environment (slack_sdk honours them and ignores NO_PROXY).
:mod:`tests.fakes.slack.clients` builds these: ``web_client(fs)``, ``bolt_app(fs)``,
``async with socket_mode(fs, app)``, ``await serve(app.web_app())``.

Drive it
--------
- Users act: ``fs.app_mention(text, channel=, user=, thread_ts=, files=)``, ``fs.dm_message(...)``,
  ``fs.channel_message(...)``, ``fs.bot_message(..., own=)``, ``fs.edit_user_message(ch, ts, text)``,
  ``fs.delete_user_message(ch, ts)`` store the message and return the inner event.
- Deliver: ``d = await fs.deliver_event(event, mode="socket"|"http", url=, ack_timeout=, max_retries=)``;
  ``await fs.slash_command("/ask", "text", mode=)``; ``await fs.click_button("action_id", value=,
  message_ts=, mode=)``; ``await fs.message_shortcut("callback", message_ts=, mode=)``. Each returns
  a :class:`Delivery` (``await d.wait_acked(within=3)``, ``await d.wait_done()``, ``d.attempts``,
  ``d.ack_latency``). Retries: events only, after ``ack_timeout`` (default 3 s), up to
  ``max_retries`` (default 3); HTTP retries carry X-Slack-Retry-Num / X-Slack-Retry-Reason,
  Socket Mode retries a new envelope with ``retry_attempt`` n and ``retry_reason: "timeout"``.
- ``fs.echo_bot_messages = "socket"|"http"``: the bot's own posts/edits come back as ``message`` /
  ``message_changed`` events, as Slack sends them to apps subscribed to message.* events.
- Raw HTTP for verification tests: ``await fs.post_http(payload, signature="bad"|"none",
  timestamp=stale)`` -> (status, body).
- Socket Mode control: ``await fs.wait_for_socket()``, ``await fs.send_disconnect()``,
  ``await fs.drop_sockets(abrupt=)``, ``await fs.wait_for_connect_count(n)``, ``fs.acks``.
- Files: ``f = fs.add_file(b"%PDF-...", "a.pdf")`` -> API file object with ``url_private``; the
  download needs ``Authorization: Bearer <bot token>`` and ``files:read``, else 302 to a sign-in
  page (``fs.file_auth_failure = "forbidden"`` for a plain 403).
- Polling helper: ``await fs.wait_for(lambda: fs.bot_messages(ch), within=5)``.

Slack's agent surface (turn 2)
------------------------------
- Events: ``fs.open_app_home(user=, tab="messages"|"home", viewing=channel)`` (``app_home_opened``
  in the user's DM with the app, ``fs.dm_with(user)``; ``viewing`` adds ``context.entities``),
  ``fs.context_changed(user=, viewing=, message_ts=)`` (``app_context_changed``; no ``viewing``:
  ``context: {}``), and ``fs.dm_message(...)`` for the Messages tab's threads.
- ``assistant.threads.setSuggestedPrompts`` / ``setTitle`` / ``setStatus`` are validated like Slack
  (``invalid_arguments`` with ``response_metadata.messages``, ``invalid_thread_ts``,
  ``missing_scope``, ``not_agent_app`` when ``fs.agent.view`` is None) and rate-limited; read
  ``fs.suggested_prompts[dm]``, ``fs.prompt_calls``, ``fs.thread_titles[(ch, ts)]``,
  ``fs.thread_status(ch, ts)`` (cleared by ``""``, by the app's next post in the thread, or after
  ``fs.agent.status_timeout``), ``fs.status_changes``, ``fs.status_log``. See :mod:`.agent_api`.

Feedback, buttons and modals
----------------------------
- Messages keep their blocks; ``actions`` and ``context_actions`` blocks are checked (Block Kit
  lengths, ``feedback_buttons`` needs both buttons). ``await fs.click_feedback(ts, "positive"|
  "negative", channel=, user=, mode=)`` delivers ``block_actions`` with the
  ``feedback_buttons`` action; ``await fs.click_button(action_id, message_ts=, strict=True)`` sends
  the stored button's ``block_id``/``value``/text. Both carry ``message``, ``container``,
  ``channel``, ``user``, ``trigger_id``, ``response_url`` (posts land in ``fs.responses``).
- ``views.open`` exchanges a trigger once within 3 s; ``fs.opened_views(callback_id)``,
  ``await fs.submit_view(view_id, {"action_id": "typed text"})`` delivers ``view_submission``;
  the view's ``state`` then follows the app's ``response_action``. See :mod:`.views`.

Files, audio, several instances
-------------------------------
- ``files.getUploadURLExternal`` → POST bytes to ``upload_url`` (length checked) →
  ``files.completeUploadExternal`` shares them (a bot ``file_share`` message in the thread);
  ``fs.file_bytes(file_id)``, ``fs.uploads``. ``AsyncWebClient.files_upload_v2`` works as is.
  See :mod:`.files_api`.
- ``fs.audio_clip(bytes, duration_ms=, recorded_on="mobile"|"desktop", transcript=)``: a Slack audio
  clip file object (``subtype: "slack_audio"``); put it in ``files=[...]`` of a message.
- HTTP mode with several instances: ``fs.events_urls = [url_a, url_b]`` (deliveries take them in
  turn; ``url=`` picks one), ``await fs.deliver_event_to(event)`` (the same event to all at once),
  ``deliver_event(..., spread_retries=True)`` (each retry to the next instance); every
  ``Attempt`` records its ``url``. Socket Mode: ``fs.hub.spread = "round_robin"`` spreads
  envelopes over the open connections (``Attempt.connection``). Rate budgets stay the
  workspace's whoever calls.

Default workspace: team ``T0FAKE0001``, bot user ``U0BOT00001`` / bot ``B0BOT00001`` / app
``A0APP00001``; users alice ``U0USER0001`` (display name "Alice") and bob ``U0USER0002``;
channels #general ``C0GENERAL1``, #random ``C0RANDOM01``, private ``G0PRIVATE1``, alice's DM
``D0DMALICE1``. Add more with ``fs.add_user`` / ``fs.add_channel``; unknown ids give
``channel_not_found`` / ``user_not_found`` like Slack.

Configure it (any time)
-----------------------
- ``fs.scopes`` (set; reported in ``x-oauth-scopes``; missing ones give ``missing_scope``),
  ``fs.auth_error`` (e.g. ``"token_revoked"``).
- ``fs.fail("chat.update", status=500, times=2, match=lambda p: p["ts"] == ts)``: scripted
  failures (``fs.faults``); ``fs.file_redirects[file_id] = url``: downloads answer 302 there.
- ``fs.limits.budgets[method] = Budget(calls, per_seconds)``; ``fs.limits.enabled``;
  ``fs.limits.per_channel`` (default {"chat.postMessage"}), ``fs.limits.per_thread`` (default
  {"assistant.threads.setStatus"}); ``fs.reset_rate_limits()``.
- ``fs.message_limits`` (text 4000, markdown_text 12,000, section 3000, 50 blocks).
- ``fs.streaming``: ``refuse``, ``dm_only``, ``require_recipient_outside_dm``, ``expiry_seconds``,
  ``update_conflict``; ``fs.expire_stream(ch, ts)``, ``fs.user_stops_stream(ch, ts)``.

Read what users saw
-------------------
``fs.timeline(ch, ts)`` (list of :class:`MessageState`: t, event, text, blocks, markdown_text,
streaming, visible), ``fs.visible_text(ch, ts)``, ``fs.thread_messages(ch, thread_ts)``,
``fs.bot_messages(ch, thread_ts)``, ``fs.status_log``, ``fs.calls`` / ``fs.calls_for(method)``,
``fs.rate_limited_count[method]`` (``.total()``), ``fs.responses`` (response_url posts),
``fs.file_downloads``, ``fs.deliveries``.

Sources for the shapes: Slack's method reference (docs.slack.dev; its machine-readable copy in
slack-ruby/slack-api-ref, 2026-04), the changelog of 2026-03-05 (setStatus scopes), the Node SDK's
event and Block Kit types (``AppContextChangedEvent``, ``AppHomeOpenedEvent``, ``FeedbackButtons``,
``ContextActionsBlock``) and Bolt for JavaScript's ``FeedbackButtonsAction``, slack_sdk 3.48's
``files_upload_v2``. Unverified (no primary source): the exact rate limit of ``setStatus``, what
the upload URL answers to a wrong length, the error for more than four prompts.
"""

from .agent_api import PromptsCall, StatusCall, StatusChange, TitleCall
from .config import (
    DEFAULT_SCOPES,
    AgentConfig,
    ApiFault,
    Budget,
    MessageLimits,
    RateLimits,
    StreamingConfig,
)
from .delivery import Ack, Attempt, Delivery
from .events import Identity, sign
from .files_api import Upload
from .model import Channel, FakeFile, Message, MessageState, User, blocks_text
from .records import ApiCall
from .server import FakeSlack
from .views import OpenedView
from .workspace import (
    DEFAULT_CHANNEL,
    DEFAULT_DM,
    DEFAULT_USER,
    OTHER_BOT_ID,
    OTHER_CHANNEL,
    OTHER_USER,
    PRIVATE_CHANNEL,
    FileDownload,
    ResponseUrlPost,
)

__all__ = [
    "DEFAULT_CHANNEL",
    "DEFAULT_DM",
    "DEFAULT_SCOPES",
    "DEFAULT_USER",
    "OTHER_BOT_ID",
    "OTHER_CHANNEL",
    "OTHER_USER",
    "PRIVATE_CHANNEL",
    "Ack",
    "AgentConfig",
    "ApiCall",
    "ApiFault",
    "Attempt",
    "Budget",
    "Channel",
    "Delivery",
    "FakeFile",
    "FakeSlack",
    "FileDownload",
    "Identity",
    "Message",
    "MessageLimits",
    "MessageState",
    "OpenedView",
    "PromptsCall",
    "RateLimits",
    "ResponseUrlPost",
    "StatusCall",
    "StatusChange",
    "StreamingConfig",
    "TitleCall",
    "Upload",
    "User",
    "blocks_text",
    "sign",
]
