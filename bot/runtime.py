"""The composition root: settings, store, gateway, renderer and the conversation service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.conversation import ConversationService, FilePipeline
from bot.metrics import Metrics
from bot.providers import Gateway
from bot.render import Pacer
from bot.settings import Settings
from bot.store import Store


@dataclass
class Runtime:
    settings: Settings
    store: Store
    gateway: Gateway
    pacer: Pacer
    service: ConversationService
    metrics: Metrics
    # Adapters add their HTTP routes here (Slack's /slack/events) before the server starts.
    http_routes: list[tuple[str, str, Any]] = field(default_factory=list)

    @classmethod
    async def create(cls, settings: Settings, *, files: FilePipeline | None = None) -> Runtime:
        store = await Store.open(settings.database_url, migrate=True)
        try:
            gateway = Gateway(settings)
            pacer = Pacer()
            if files is None:
                from bot.files import FileService

                files = FileService(settings, store, transcriber=gateway)
            metrics = Metrics()
            service = ConversationService(settings, store, gateway, pacer, files=files, observer=metrics)
        except BaseException:
            await store.close()
            raise
        return cls(settings, store, gateway, pacer, service, metrics)

    async def aclose(self) -> None:
        await self.service.aclose()
        await self.pacer.aclose()
        await self.gateway.aclose()
        await self.store.close()
