"""A loopback fake of Discord (REST API v10 + gateway) that the real discord.py 2.7 talks to.

Import it as ``from tests.fakes.discord_api import FakeDiscord`` (or from ``tests.fakes.discord``).
Everything listens on 127.0.0.1, on a random port.

Starting
--------
In the test's event loop::

    async with FakeDiscord(heartbeat_interval_ms=1000) as fd:
        restore = await configure_discord_py(fd.api_url, fd.token)  # or: with fd.patch_discord_py():
        ...
        restore()

In a background thread with its own loop (for a bot in a subprocess, or sync tests)::

    with FakeDiscord.in_thread() as fd:
        env = {"DISCORD_API_URL": fd.api_url, "DISCORD_TOKEN": fd.token}
        guild = fd.create_guild()                      # builders work from any thread
        fd.run(fd.user_says(channel, alice, "hi"))     # async helpers go through fd.run(...)

Constructor options: ``token``, ``bot_name``, ``limits`` (:class:`Limits`), ``heartbeat_interval_ms``
(HELLO; Discord's is 41250), ``message_content_intent`` / ``members_intent`` / ``presence_intent``
(whether the application has the privileged intent enabled: sets the app flags; asking for a
disabled one at IDENTIFY closes the socket with 4014, as Discord does), ``shards`` (what
``/gateway/bot`` announces; guilds are routed by ``(guild_id >> 22) % shard_count``).

Addresses: ``fd.api_url`` (``http://127.0.0.1:PORT/api/v10``, use as DISCORD_API_URL; ``/api/v9``
works too), ``fd.gateway_url`` (``ws://127.0.0.1:PORT/gateway``, returned by ``GET /gateway/bot``),
``fd.resume_gateway_url`` (``.../gateway/resume``, READY's ``resume_gateway_url``), ``fd.http_root``.

Pointing discord.py at it
-------------------------
:mod:`tests.fakes.discord.clients` does it for tests: ``async with pointed(fd):`` and
``async with running(fd, setup=..., shard_ids=[0], shard_count=2) as bot:`` (a real client
until the block ends, with a record of the events it received).

Set ``discord.http.Route.BASE = fd.api_url`` and ``DiscordWebSocket.DEFAULT_GATEWAY =
yarl.URL(<url from GET /gateway/bot>)``: :func:`configure_discord_py` does exactly that from
DISCORD_API_URL, like the adapter in production; :func:`point_discord_py` sets both directly. Both
return a function restoring the old values (they are class attributes: process-wide). Without
DEFAULT_GATEWAY, an op 9 (or a failed reconnect) sends the bot to the real Discord. Use
``guild_ready_timeout=0.1`` in tests: on_ready otherwise waits 2 s after the last GUILD_CREATE.

The world (builders, usable before ``start`` except :meth:`~FakeDiscord.add_file`)
--------------------------------------------------------------------------------
- ``fd.bot`` (the bot's ``User``; its id is ``fd.application_id``), ``fd.token``, ``fd.app_flags``.
- ``fd.create_guild(name, owner=None, bot_permissions=..., everyone_permissions=...)`` → ``Guild``
  with @everyone, the bot's managed role (``fd.bot_role(guild)``) and the bot as a member.
- ``fd.create_user(name, bot=False)`` → ``User``; ``fd.add_member(guild, user, roles=[...])``;
  ``fd.create_role(guild, name, permissions, members=[...])``.
- ``fd.create_channel(guild, name, type=0, parent=None, topic=None, overwrites=[Overwrite(...)])``.
- ``fd.create_thread(parent, name, owner=None (the bot), message=None, type=11)``: from a message,
  the thread's id is the message's id; dispatches THREAD_CREATE.
- ``fd.create_dm(user)`` → the DM channel (type 1, no guild).
- ``fd.add_file(filename, data, content_type)`` → ``StoredAttachment`` served at its ``url``
  (``http://127.0.0.1:PORT/attachments/...``); downloads are counted in ``fd.attachment_downloads``.
Created after a client connected, they dispatch GUILD_CREATE / CHANNEL_CREATE / GUILD_MEMBER_ADD...

Playing the users (async, on the fake's loop; each returns once the event is on the sockets)
------------------------------------------------------------------------------------
- ``await fd.user_says(channel, author, content, mentions=[], reference=msg, mention_author=True,
  attachments=[fd.add_file(...) or ("a.pdf", b"...", "application/pdf")], embeds=[])`` →
  ``StoredMessage``; MESSAGE_CREATE with author, member, mentions (from ``<@id>`` in the text, as on
  Discord, plus ``mentions=``), ``message_reference`` + ``referenced_message`` (type 19 reply),
  attachments, ``guild_id``. DMs: pass a DM channel. Without the MESSAGE_CONTENT intent a session
  gets empty content/embeds/attachments/components, except in DMs, for its own messages, and when
  mentioned (REST reads follow the app flag the same way).
- ``await fd.user_sends_voice(channel, author, ogg_bytes, duration_secs=, waveform=)``: a voice
  message (flag ``IS_VOICE_MESSAGE`` 1 << 13, no content, one ``audio/ogg`` attachment
  ``voice-message.ogg`` with ``duration_secs`` and a base64 ``waveform``), served by the fake CDN.
- ``await fd.user_edits(msg, content)``, ``await fd.user_deletes(msg)``.
- ``await fd.click_button(msg, custom_id, user, values=None)`` → ``InteractionRecord`` (type 3);
  ``ValueError`` if the message has no such enabled component.
- ``await fd.slash_command("ask", {"question": "hi"}, user, channel)`` (type 2; ``"group sub"`` for
  subcommands; option values may be ``User``/``Channel``/``Role``/``StoredAttachment``, sent with
  ``resolved``), ``await fd.autocomplete("ask", {"question": "wh"}, "question", user, channel)``
  (type 4). The command must be registered (the bot's ``tree.sync()``) unless
  ``require_registered=False``.
- Interactions: ``rec.responses`` (``CallbackRecord(t, route, type, data)``, route "callback",
  "followup", "edit_original", "edit", "delete"), ``rec.callback``, ``rec.acked``,
  ``rec.original_message_id``, ``rec.followup_message_ids``. Callbacks later than
  ``limits.interaction_ack_seconds`` (3 s) get 404 10062; a second one 400 40060. After a
  "thinking" defer, the first follow-up fills the placeholder, as on Discord.

Waiting
-------
``await fd.wait_for(lambda: ..., timeout=5)`` returns the predicate's truthy value or raises
``TimeoutError``; ``fd.wait_for_message(channel, predicate, author=fd.bot)``,
``fd.wait_for_identify(n)``, ``fd.wait_for_response(rec)``, ``fd.flush()``.

Gateway controls
----------------
``await fd.reconnect(wait=True)`` (op 7; the client RESUMEs at ``resume_gateway_url`` and gets the
missed events replayed), ``await fd.invalidate_session(resumable=False)`` (op 9; the client
re-IDENTIFYs at DEFAULT_GATEWAY), ``await fd.drop_connections(code=4000)`` (server-side close).
With ``wait=False`` they return at once, so a test can dispatch events during the gap.
``fd.gateway``: ``identify_count``, ``resume_count``, ``failed_resume_count``, ``heartbeat_count``,
``connect_log`` ([(t, "connect /gateway" | "connect /gateway/resume" | "identify" | "resume")]),
``sessions``, ``ack_heartbeats`` (set False to play a zombie gateway). Op 8 gets a
GUILD_MEMBERS_CHUNK with every member; op 3 is kept in ``fd.presence``.

Timelines and counters (what users saw, and when: ``time.monotonic()``, comparable across processes)
------------------------------------------------------------------------------------------------
- ``fd.messages[mid]``: ``StoredMessage`` with ``content``, ``components``, ``embeds``,
  ``attachments``, ``flags``, ``ephemeral``, ``deleted``/``deleted_t``, ``edit_count``,
  ``custom_ids``, and ``history``: every ``MessageState(t, content, components, embeds, flags,
  kind="create"|"edit")``.
- ``fd.channel_messages(channel, include_deleted=False)`` (oldest first), ``fd.bot_messages(channel)``,
  ``fd.visible_text(channel)`` (live, non-ephemeral contents joined by newlines),
  ``fd.pinged_user_ids(msg)`` (mentions after ``allowed_mentions``).
- ``fd.typing_log`` ([TypingEvent(t, channel_id, user_id)]), ``fd.requests``
  ([RequestRecord(t, method, path, route, status)]), ``fd.commands``, ``fd.interactions``.
- ``fd.rate_limited_count`` (every 429), ``fd.rate_limited`` (Counter by route key, e.g.
  ``"PATCH /channels/{channel_id}/messages/{message_id}"``, or ``"global"``),
  ``fd.rate_limit_log``, ``fd.invalid_request_count`` (401/403/429, which Discord bans at 10,000
  per 10 minutes).
- ``fd.server_errors``: tracebacks of bugs in the fake itself (a REST bug answers 400 code -1 at once
  rather than a 500 that discord.py would retry); assert it stays empty.

Limits (``Limits``; change ``fd.limits.*`` at any time)
------------------------------------------------------
``message_create`` and ``message_edit``: ``RateLimitRule(5, 5.0)`` each, per channel (so all the
messages of a channel share one edit bucket); ``webhook_message`` (interaction follow-ups and
edits, per token; unverified): 5 per 5 s; ``other_routes``: 50 per s per route and major parameter;
``global_per_second``: 50 (interaction/webhook routes exempt, as on Discord), counted over every
request made with the bot's token, whichever connection or shard process sends it. Successful responses
carry ``X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket``; a 429 carries ``Via``,
``Retry-After``, ``X-RateLimit-Scope`` (and ``X-RateLimit-Global: true`` when global) and
``{"message": "You are being rate limited.", "retry_after": 1.234, "global": false}``.
``RateLimitRule(..., announce=False)`` sends no bucket headers: an undocumented limit the client
cannot pace for, which is what produces 429s with discord.py. Content over ``content_chars`` (2000)
is 400 50035 ``Invalid Form Body`` with ``errors.content._errors[0].code == "BASE_TYPE_MAX_LENGTH"``;
embeds (4096 / 6000 / 10), components (5 rows of 5, custom_id 100, label 80) and empty messages
(50006) are checked too; uploads over ``upload_bytes`` (10 MiB) are 413 40005. Permissions are
computed from roles and overwrites: 403 50001 (no VIEW_CHANNEL) or 50013.

REST routes
-----------
GET /users/@me/guilds (the bot's servers, with its server-level permissions);
GET /gateway, /gateway/bot, /users/@me, /users/{id}, /oauth2/applications/@me (and
/applications/@me); POST /users/@me/channels; GET /channels/{id}; GET, POST /channels/{id}/messages
(history: before/after/around/limit ≤ 100, newest first); GET, PATCH, DELETE
/channels/{id}/messages/{mid}; POST /channels/{id}/typing; POST /channels/{id}/messages/{mid}/threads;
POST /channels/{id}/threads; PUT /channels/{id}/thread-members/@me; PUT, DELETE
/channels/{id}/messages/{mid}/reactions/{emoji}/@me; GET, PUT /applications/{app}/commands and
/applications/{app}/guilds/{gid}/commands; POST /interactions/{id}/{token}/callback
(``with_response``); POST /webhooks/{app}/{token} (``wait``); GET, PATCH, DELETE
/webhooks/{app}/{token}/messages/{mid|@original}. Multipart uploads (``payload_json`` +
``files[n]``, or plain form fields) are accepted wherever a message is, as discord.py 2.7 sends
them for ``send(file=)`` / ``edit(attachments=)``: each ``attachments`` entry is an existing
attachment's id (kept) or the ``n`` of ``files[n]`` (new, with ``filename``, ``description``,
``duration_secs``/``waveform`` for audio, ``is_spoiler``); on an edit that sends the array, only
what it lists remains (API v10), without it uploads are appended. A file sent as
``application/octet-stream`` gets its type from its name (``image/png``, ``text/plain;
charset=utf-8``); every file may be up to ``upload_bytes``. ``IS_VOICE_MESSAGE`` bodies follow
Discord's rules: 50159 (other content), 50160 (not one audio file), 50161 (no duration or
waveform), 50162 (editing one). Anything else: 404 ``{"message": "404: Not Found",
"code": 0}``.

Sources: Discord's API docs (discord/discord-api-docs, 2026-08: message resource "Voice
Messages", attachment request structure, "Editing Message Attachments", JSON error codes
50159-50162), discord.py 2.7.1's ``handle_message_parameters`` / ``File.to_dict`` /
``Attachment`` (what it sends and reads).
"""

from .dpy import configure_discord_py, point_discord_py
from .fake import AttachmentSpec, FakeDiscord
from .models import (
    AppFlag,
    AttachmentFlag,
    CallbackType,
    Channel,
    ChannelType,
    Guild,
    Intent,
    InteractionType,
    Member,
    MessageFlag,
    MessageType,
    Overwrite,
    Perm,
    Role,
    User,
)
from .ratelimit import Limits, RateLimitRule
from .records import (
    CallbackRecord,
    InteractionRecord,
    MessageState,
    RateLimitHit,
    RequestRecord,
    StoredAttachment,
    StoredMessage,
    TypingEvent,
)
from .state import ApiError

__all__ = [
    "ApiError",
    "AppFlag",
    "AttachmentFlag",
    "AttachmentSpec",
    "CallbackRecord",
    "CallbackType",
    "Channel",
    "ChannelType",
    "FakeDiscord",
    "Guild",
    "Intent",
    "InteractionRecord",
    "InteractionType",
    "Limits",
    "Member",
    "MessageFlag",
    "MessageState",
    "MessageType",
    "Overwrite",
    "Perm",
    "RateLimitHit",
    "RateLimitRule",
    "RequestRecord",
    "Role",
    "StoredAttachment",
    "StoredMessage",
    "TypingEvent",
    "User",
    "configure_discord_py",
    "point_discord_py",
]
