"""ASGI plumbing the guard's middlewares share: adding response headers, and handing the
application a message the middleware has already read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.types import Message, Receive, Send


def adding_headers(send: Send, extra: Sequence[tuple[bytes, bytes]]) -> Send:
    """`send`, adding each of `extra` (lower-case names) to the response start message, unless the
    application already set a header of that name (its own choice wins; no header appears twice)."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ())]
            present = {name.lower() for name, _ in headers}
            for header in extra:
                if header[0] not in present:
                    headers.append(header)
            message = {**message, "headers": headers}
        await send(message)

    return send_with_headers


def replaying(first: Message, receive: Receive, then: Callable[[Message], Awaitable[None]] | None = None) -> Receive:
    """`receive` for an application that must still see `first`, which the middleware read: it
    gets `first`, then whatever `receive` brings (each later message passed to `then` first)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first
        following = await receive()
        if then is not None:
            await then(following)
        return following

    return replay
