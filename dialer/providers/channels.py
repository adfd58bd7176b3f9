"""One MessageProvider for the pipeline, with one adapter per channel behind it."""

from __future__ import annotations

from collections.abc import Mapping

from dialer.providers.base import (
    MessageLookup,
    MessageProvider,
    MessageStatusUpdate,
    SendMessageRequest,
    SendResult,
)


class ChannelRouter:
    """Sends each message through the adapter of its channel (whatsapp, email, ...)."""

    name = "channels"

    def __init__(self, by_channel: Mapping[str, MessageProvider]) -> None:
        self._by_channel = dict(by_channel)

    def send(self, request: SendMessageRequest) -> SendResult:
        adapter = self._by_channel.get(request.channel)
        if adapter is None:
            raise ValueError(f"no adapter for channel {request.channel!r}")
        return adapter.send(request)

    def message_status(self, channel: str, provider_message_id: str) -> MessageStatusUpdate | None:
        """Asks the channel's adapter, if it can be asked (MessageLookup); else None."""
        adapter = self._by_channel.get(channel)
        if not isinstance(adapter, MessageLookup):
            return None
        return adapter.message_status(channel, provider_message_id)
