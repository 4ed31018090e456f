"""Request body limits, applied before FastAPI reads a body: JSON only, and no larger than
``YM_API_MAX_BODY``.

A pure ASGI middleware, so an oversized body is refused from its
``Content-Length`` before it is read, and a body sent without one (chunked)
is cut off as soon as it passes the limit, never held whole in memory.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.api.errors import BodyTooLarge, error_response

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyLimits:
    """Refuse non-JSON bodies (415) and bodies over ``max_body`` bytes (413).

    Args:
        app: The ASGI app to protect.
        max_body: Largest body accepted, in bytes.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        has_body = headers.get("transfer-encoding") is not None or (
            length is not None and length.strip() not in ("", "0")
        )
        if has_body:
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json":
                shown = media or "none"
                reply = error_response(
                    415,
                    "unsupported_media_type",
                    f"Content-Type {shown!r} is not accepted; send application/json "
                    "(JSON only: pickle and other encodings are refused)",
                    "Content-Type",
                )
                await reply(scope, receive, send)
                return
        if length is not None and length.strip().isdigit() and int(length) > self.max_body:
            await self._too_large(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        exc = BodyTooLarge(self.max_body)
        reply = error_response(413, "body_too_large", str(exc.detail), "body")
        await reply(scope, receive, send)
