"""How the fake sends Slack's side of the conversation to the app: events, signed HTTP, Socket Mode.

One workspace, any number of app instances: HTTP deliveries go to :attr:`Workspace.events_urls` in
turn (or to the ``url`` a test names, or to several at once); Socket Mode envelopes go to one of
the open connections. Whatever the instance, the Web API budgets stay the workspace's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp

from . import events as ev
from .delivery import Ack, Delivery, Kind, Mode, SocketHub, encode_http_body, now_timestamp, run_http
from .model import Message
from .workspace import Workspace

#: Where an HTTP delivery goes: one URL, or one per attempt number (retries through a load balancer).
Target = str | Callable[[int], str]


class Sending(Workspace):
    """Delivery of events and interactions, request signing, Socket Mode control."""

    hub: SocketHub
    http: aiohttp.ClientSession
    _tasks: set[asyncio.Task[Any]]

    # ------------------------------------------------------------------ payloads

    def event_callback(self, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        """Wrap an inner event as Slack's ``event_callback`` payload."""
        return ev.event_callback(self.identity, event, event_id=event_id)

    def signed_headers(self, body: bytes, content_type: str, timestamp: str | None = None) -> dict[str, str]:
        ts = timestamp or now_timestamp()
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": ev.sign(self.signing_secret, ts, body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }

    # ------------------------------------------------------------------ delivery

    async def deliver(
        self,
        kind: Kind,
        payload: dict[str, Any],
        *,
        mode: Mode = "socket",
        url: Target | None = None,
        ack_timeout: float | None = None,
        max_retries: int | None = None,
        spread_retries: bool = False,
    ) -> Delivery:
        """Send any payload; returns at once with a :class:`Delivery` that fills in as it goes.

        HTTP mode: to ``url`` if given, else to the next of :attr:`events_urls` (round-robin);
        with ``spread_retries`` each retry goes to the next instance too (a load balancer).
        """
        delivery = Delivery(
            kind=kind,
            mode=mode,
            payload=payload,
            ack_timeout=self.ack_timeout if ack_timeout is None else ack_timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
        )
        self.deliveries.append(delivery)
        if mode == "socket":
            job: Awaitable[None] = self.hub.run(delivery, self.connect_wait)
        else:
            target: Target
            if url is not None:
                target = url
            elif spread_retries:
                target = self._spread()
            else:
                target = self.next_events_url()
            job = run_http(self, delivery, target, self.http_retry_delays)
        task = asyncio.ensure_future(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.sleep(0)  # let the first attempt start
        return delivery

    def _spread(self) -> Callable[[int], str]:
        chosen: dict[int, str] = {}

        def pick(number: int) -> str:
            if number not in chosen:
                chosen[number] = self.next_events_url()
            return chosen[number]

        return pick

    def _wrap(self, event: dict[str, Any], event_id: str | None) -> dict[str, Any]:
        if event.get("type") == "event_callback":
            return event
        return self.event_callback(event, event_id=event_id)

    async def deliver_event(
        self,
        event: dict[str, Any],
        *,
        mode: Mode = "socket",
        url: Target | None = None,
        ack_timeout: float | None = None,
        max_retries: int | None = None,
        event_id: str | None = None,
        spread_retries: bool = False,
    ) -> Delivery:
        """Deliver an inner event (wrapped in ``event_callback``) or a full callback payload."""
        return await self.deliver(
            "events_api",
            self._wrap(event, event_id),
            mode=mode,
            url=url,
            ack_timeout=ack_timeout,
            max_retries=max_retries,
            spread_retries=spread_retries,
        )

    async def deliver_event_to(
        self,
        event: dict[str, Any],
        urls: Sequence[str] | None = None,
        *,
        ack_timeout: float | None = None,
        max_retries: int | None = None,
    ) -> list[Delivery]:
        """The same ``event_callback`` (one ``event_id``) POSTed to several instances at the same
        moment (default: every URL of :attr:`events_urls`), e.g. a retry racing the first attempt
        through a load balancer. Returns one :class:`Delivery` per URL."""
        targets = list(urls if urls is not None else self.events_urls)
        if not targets:
            raise ValueError("deliver_event_to needs urls= or fs.events_urls")
        payload = self._wrap(event, None)
        started = [
            self.deliver(
                "events_api",
                payload,
                mode="http",
                url=target,
                ack_timeout=ack_timeout,
                max_retries=max_retries,
            )
            for target in targets
        ]
        return list(await asyncio.gather(*started))

    async def echo(self, msg: Message, previous: dict[str, Any] | None = None) -> None:
        """Deliver the event Slack would send for the bot's own post or edit (see echo_bot_messages)."""
        if self.echo_bot_messages is None:
            return
        channel_type = self.channels[msg.channel].channel_type
        if previous is None:
            event = ev.bot_message_event(
                channel=msg.channel,
                channel_type=channel_type,
                bot_id=self.identity.bot_id,
                text=msg.markdown_text if msg.markdown_text is not None else msg.text,
                ts=msg.ts,
                user=self.identity.bot_user_id,
                app_id=self.identity.app_id,
                thread_ts=msg.thread_ts,
            )
        else:
            event = ev.message_changed_event(
                channel=msg.channel,
                channel_type=channel_type,
                message=msg.to_api(self.identity.team_id),
                previous_message=previous,
                event_ts=self.new_ts(),
            )
        await self.deliver_event(event, mode=self.echo_bot_messages)

    async def post_http(
        self,
        payload: dict[str, Any] | bytes,
        *,
        kind: Kind = "events_api",
        url: str | None = None,
        signature: str = "valid",
        timestamp: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """One raw HTTP request to the app, for testing request verification.

        ``signature``: ``"valid"``, ``"bad"`` (wrong secret), ``"none"`` (no signature headers).
        ``timestamp``: e.g. ``str(int(time.time()) - 600)`` for a stale request (still signed).
        Returns (status, body).
        """
        if isinstance(payload, bytes):
            body, ctype = payload, "application/json"
        else:
            body, ctype = encode_http_body(kind, payload)
        target = url or self.events_url
        if not target:
            raise ValueError("post_http needs url= or fs.events_url")
        headers = self.signed_headers(body, ctype, timestamp)
        if signature == "bad":
            headers["X-Slack-Signature"] = ev.sign(
                "not-the-secret", headers["X-Slack-Request-Timestamp"], body
            )
        elif signature == "none":
            del headers["X-Slack-Signature"], headers["X-Slack-Request-Timestamp"]
        headers.update(extra_headers or {})
        async with self.http.post(target, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    # ------------------------------------------------------------------ Socket Mode control

    def issue_socket_url(self) -> str:
        return self.hub.issue_url()

    @property
    def socket_connections(self) -> int:
        """Websockets open now."""
        return len([ws for ws in self.hub.connections if not ws.closed])

    @property
    def socket_connect_count(self) -> int:
        """Websocket connections accepted so far (reconnects count)."""
        return self.hub.connect_count

    @property
    def acks(self) -> list[Ack]:
        return self.hub.acks

    async def wait_for_socket(self, count: int = 1, within: float = 5.0) -> None:
        await self.hub.wait_connections(count, within)

    async def wait_for_connect_count(self, count: int, within: float = 5.0) -> None:
        """Wait until ``count`` connections were accepted in total and one is open (reconnects)."""
        await self.hub.wait_connect_count(count, within)

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        await self.hub.send_disconnect(reason)

    async def drop_sockets(self, abrupt: bool = False) -> None:
        await self.hub.drop(abrupt)
