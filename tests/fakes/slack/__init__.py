"""A loopback fake of Slack for tests and benchmarks, driven by the real slack_sdk / slack_bolt.

One aiohttp server on 127.0.0.1 (random port) serves the Web API (``/api/<method>``), Socket Mode
(``/socket``), private file downloads (``/files-pri/...``) and ``response_url`` endpoints; the fake
also delivers events to an app over HTTP, signed like Slack.

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
  ``fs.limits.per_channel`` (default {"chat.postMessage"}); ``fs.reset_rate_limits()``.
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
"""

from .config import DEFAULT_SCOPES, ApiFault, Budget, MessageLimits, RateLimits, StreamingConfig
from .delivery import Ack, Attempt, Delivery
from .events import Identity, sign
from .model import Channel, FakeFile, Message, MessageState, User, blocks_text
from .server import (
    DEFAULT_CHANNEL,
    DEFAULT_DM,
    DEFAULT_USER,
    OTHER_BOT_ID,
    OTHER_CHANNEL,
    OTHER_USER,
    PRIVATE_CHANNEL,
    FakeSlack,
    FileDownload,
    ResponseUrlPost,
)
from .web_api import ApiCall, StatusCall

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
    "RateLimits",
    "ResponseUrlPost",
    "StatusCall",
    "StreamingConfig",
    "User",
    "blocks_text",
    "sign",
]
