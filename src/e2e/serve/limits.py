"""The demo server's connection limits, below the web app.

uvicorn closes an idle kept-alive connection after a few seconds, but a connection that sends
part of a request and then nothing (or trickles its body) is kept forever: a few hundred such
connections tie the server up. `TimedH11Protocol` gives every request `timeout_s` from its
first byte (or from the connection's start) until it has been received whole; past that the
connection is closed, with a 408 when nothing has been answered yet. Answering is bounded
elsewhere (the app's decoder slots), so a slow model is not cut off.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

RECEIVED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)


def timed_protocol(timeout_s: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol with a deadline for receiving each request."""

    class TimedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._deadline: asyncio.TimerHandle | None = self.loop.call_later(timeout_s,
                                                                              self._expire)

        def data_received(self, data: bytes) -> None:
            if self._deadline is None:  # the next request on a kept-alive connection
                self._deadline = self.loop.call_later(timeout_s, self._expire)
            super().data_received(data)
            if self.conn.their_state in RECEIVED:
                self._cancel()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel()
            super().connection_lost(exc)

        def _cancel(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            idle = self.cycle is None or self.cycle.response_complete
            if idle and self.conn.our_state is h11.IDLE:  # its headers never came whole
                body = f"request not received within {timeout_s:g}s\n".encode()
                try:
                    self.transport.write(self.conn.send(h11.Response(
                        status_code=408, headers=[("content-type", "text/plain; charset=utf-8"),
                                                  ("content-length", str(len(body))),
                                                  ("connection", "close")])))
                    self.transport.write(self.conn.send(h11.Data(data=body)))
                    self.transport.write(self.conn.send(h11.EndOfMessage()))
                except h11.LocalProtocolError:
                    pass
            self.transport.close()  # the app, if waiting for the body, sees a disconnect

    return TimedH11Protocol
