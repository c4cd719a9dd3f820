"""The demo server's connection limits, below the web app: one client cannot block the others.

uvicorn closes an idle kept-alive connection after a few seconds, but on its own it keeps a
connection that sends part of a request and then nothing (or trickles its body) forever, and
its only cap (`limit_concurrency`) answers 503 to *everyone* once any one client holds that
many connections. `limited_protocol` replaces both with rules per connection and per client
address:

- a request must arrive whole within `timeout_s` of its first byte (else 408 and close);
  a new connection must start a request within `idle_s` (else it is closed);
- one address holds at most `max_per_client` connections, all addresses `max_connections`.
  Past either cap the oldest *idle* connection (no request in progress) of that address, or
  of the address holding the most, is closed to make room; only when none is idle is the new
  connection refused with 503. A client that hogs connections thus loses its own, and
  `/healthz` from anyone else is answered.

Answering is bounded elsewhere (the app's decoder slots and per-address requests), so a slow
model is not cut off. Every answer written here carries the app's security headers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

RECEIVED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)

# Sent with every answer, by the app (e2e.serve.app) and by the refusals here.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",  # JSON is never run as HTML
    "X-Frame-Options": "DENY",  # no page of the demo inside another site's frame
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data: blob:; media-src 'self' data: blob:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class ConnectionLimits:
    timeout_s: float = 20.0  # a request arrives whole within this, from its first byte
    idle_s: float = 5.0  # a new connection starts a request within this
    max_connections: int = 64  # open connections, all clients together
    max_per_client: int = 8  # open connections from one address


def raw_response(status: int, reason: str, text: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, written below the app."""
    body = text.encode()
    headers = {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body)),
               "Connection": "close", **SECURITY_HEADERS}
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n"
                                                       for k, v in headers.items())
    return head.encode() + b"\r\n" + body


def limited_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol with the limits above; one registry per server."""
    by_client: dict[str, list[LimitedH11Protocol]] = {}  # oldest first

    class LimitedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._busy = True  # not idle (never evicted) until the checks below pass
            self._timer: asyncio.TimerHandle | None = None
            self._host = self.client[0] if self.client else "?"
            mine = by_client.setdefault(self._host, [])
            mine.append(self)
            if _open(mine) > limits.max_per_client and not _evict_idle(mine):
                return self._refuse(f"too many connections from your address (the limit is "
                                    f"{limits.max_per_client}); close some and try again")
            if sum(map(_open, by_client.values())) > limits.max_connections and not any(
                    _evict_idle(c) for c in sorted(by_client.values(), key=_open,
                                                   reverse=True)):
                return self._refuse("the server is at its connection limit "
                                    f"({limits.max_connections}); try again")
            self._busy = False
            self._arm(limits.idle_s)

        def data_received(self, data: bytes) -> None:
            if not self._busy:  # the first byte of a request: it has timeout_s to arrive
                self._busy = True
                self._arm(limits.timeout_s)
            super().data_received(data)
            if self.conn.their_state in RECEIVED:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]:
                self._busy = False  # idle between requests: uvicorn's keep-alive timeout runs

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            mine = by_client.get(self._host, [])
            if self in mine:
                mine.remove(self)
            if not mine:
                by_client.pop(self._host, None)
            super().connection_lost(exc)

        def idle(self) -> bool:
            return not self._busy and not self.transport.is_closing()

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expire(self) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            answering = self.cycle is not None and not self.cycle.response_complete
            if self._busy and not answering and self.conn.our_state is h11.IDLE:
                self.transport.write(raw_response(  # its request never came whole
                    408, "Request Timeout",
                    f"request not received within {limits.timeout_s:g}s\n"))
            self.transport.close()  # the app, if waiting for the body, sees a disconnect

        def _refuse(self, message: str) -> None:
            self._busy = True  # not idle: never picked to be evicted in turn
            self.transport.write(raw_response(503, "Service Unavailable", message + "\n"))
            self.transport.close()

    def _open(connections: list[LimitedH11Protocol]) -> int:
        return sum(not c.transport.is_closing() for c in connections)

    def _evict_idle(connections: list[LimitedH11Protocol]) -> bool:
        """Close the oldest idle connection of `connections`; False if none is idle."""
        for c in connections:
            if c.idle():
                c._disarm()
                c.transport.close()
                return True
        return False

    return LimitedH11Protocol
