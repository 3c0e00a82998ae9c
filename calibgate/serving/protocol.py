"""uvicorn's h11 protocol with the two bounds a server facing untrusted clients needs, and JSON framing errors.

uvicorn bounds only the idle time between requests (``timeout_keep_alive``).
A client that sends part of a request's headers or body and then nothing
held its connection, and a file descriptor, for ever: enough of them used up
the descriptor limit, every other client timed out, and asyncio's accept loop
logged a traceback per attempt (about 200 MB of stderr in two minutes,
measured by a fault sweep). This protocol adds:

* a deadline for receiving each whole request (headers and body),
  ``request_timeout`` seconds from the moment the server waits for it: past it
  the client gets a 408 JSON answer and the connection is closed;
* a cap on open connections, ``max_connections``: a connection over it is
  closed on arrival, before it costs more than its accept, so the cap (set well
  under the descriptor limit) keeps the server answering everyone else.

A request h11 cannot parse (a bad Content-Length, a bad chunk size, a missing
Host) is answered with the same ``{"error", "fix"}`` JSON as every other bad
request, instead of uvicorn's plain-text 400.
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

TIMED_OUT = "calibgate.timed_out"  # set in a request's ASGI scope when the receive deadline cut it off
FRAMING_FIX = "send a well-formed HTTP/1.1 request (Host header, one valid Content-Length or chunked body)"


class GuardedH11Protocol(H11Protocol):
    """:class:`H11Protocol` with a per-request receive deadline and a connection cap (see the module docstring)."""

    request_timeout: float = 30.0
    max_connections: int = 1000
    on_refused = None  # called with the reason ('timeout', 'connections', 'framing') of each refused connection

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._deadline = None
        if len(self.connections) > self.max_connections:
            self._refused("connections")
            transport.abort()
            return
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm()  # the whole request is in: the app's time is its own

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start the next pipelined request
        if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._arm()  # the next request on this connection (perhaps pipelined, half in) gets its own deadline

    def send_400_response(self, msg: str) -> None:
        self._refused("framing")
        self._send_json(400, "the request is not valid HTTP/1.1 (h11 could not parse it)", FRAMING_FIX)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            return
        self._refused("timeout")
        if self.cycle is not None:
            self.cycle.scope[TIMED_OUT] = True  # the app's read of the body fails next: counted here, not twice
        started = self.cycle is not None and self.cycle.response_started and not self.cycle.response_complete
        if started:
            self.transport.close()
            return
        self._send_json(408, f"the request was not received within {self.request_timeout:g} s",
                        "send the whole request at once; a slow link needs a larger 'calibgate serve --request-timeout'")

    def _send_json(self, status: int, error: str, fix: str) -> None:
        body = json.dumps({"error": error, "fix": fix}).encode("utf-8")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        try:
            output = self.conn.send(h11.Response(status_code=status, headers=headers))
            self.transport.write(output + self.conn.send(h11.Data(data=body)) + self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:  # no request head yet (h11 answers only a request): the bytes by hand
            reason = {400: b"Bad Request", 408: b"Request Timeout"}[status]
            head = b"".join(k + b": " + v + b"\r\n" for k, v in headers)
            self.transport.write(b"HTTP/1.1 %d %s\r\n%s\r\n%s" % (status, reason, head, body))
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's own answer, if it still makes one, goes nowhere
        self.transport.close()

    def _refused(self, reason: str) -> None:
        if self.on_refused is not None:
            self.on_refused(reason)


def guarded_protocol(*, request_timeout: float, max_connections: int, on_refused=None) -> type[GuardedH11Protocol]:
    """A protocol class with these bounds (uvicorn instantiates it per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {
        "request_timeout": float(request_timeout), "max_connections": int(max_connections),
        "on_refused": staticmethod(on_refused) if on_refused else None,
    })
