"""The websocket side: one `YjsConsumer` per Yjs client, with an access check."""

from __future__ import annotations

from urllib.parse import parse_qs

from ystores.django import YjsConsumer


class DocConsumer(YjsConsumer):
    def make_room_name(self) -> str:
        return str(self.scope["url_route"]["kwargs"]["room"])

    async def connect(self) -> None:
        token = parse_qs(self.scope["query_string"].decode()).get("token", [""])[0]
        if token != "let-me-in":  # check a session or a token of your own here
            # Accept, then close with a 44xx code: y-websocket does not retry those.
            # (Closing before accepting refuses the handshake; clients keep retrying.)
            await self.accept()
            await self.close(code=4403)
            return
        await super().connect()
