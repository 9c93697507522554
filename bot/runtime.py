"""The composition root: settings, store, gateway, renderer and the conversation service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.metrics import Metrics
from bot.providers import Gateway
from bot.render import Pacer
from bot.service import ConversationService
from bot.settings import Settings
from bot.store import Store
from bot.turn import FilePipeline


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

                files = FileService(settings, store)
            service = ConversationService(settings, store, gateway, pacer, files=files)
            # Live figures are read from the service and the renderer at each scrape.
            metrics = Metrics(
                in_flight=lambda: service.in_flight,
                waiting=lambda: service.waiting,
                by_platform=lambda: pacer.stats.by_platform,
            )
            service.observer = metrics
        except BaseException:
            await store.close()
            raise
        return cls(settings, store, gateway, pacer, service, metrics)

    async def aclose(self) -> None:
        await self.service.aclose()
        await self.pacer.aclose()
        await self.gateway.aclose()
        await self.store.close()
