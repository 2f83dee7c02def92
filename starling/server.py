"""Running the app under uvicorn, the same way for ``starling dev`` and ``starling serve``.

* Logging: ``starling.logs`` configures every logger, uvicorn's included (in each worker
  process too); uvicorn's access log is off, ``starling.request_log`` writes request lines.
* Graceful shutdown: on SIGTERM uvicorn stops accepting, lets in-flight requests finish and
  cancels what still runs after ``SHUTDOWN_TIMEOUT_SECONDS``; then the lifespan shutdown
  runs (the in-process worker drains, connections close).
* WebSockets are closed with 1001 (going away: reconnect, to another instance if there is
  one) instead of uvicorn's 1012 (service restart), as the API contract says.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from starling.config import Settings
from starling.logs import LogFormat, logging_config

GOING_AWAY = 1001


class GoingAwayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket protocol, closing with 1001 when the server shuts down.

    uvicorn's ``shutdown`` with the close code changed: the code is not a parameter."""

    def shutdown(self) -> None:
        self.stop_keepalive()
        if self.close_sent:
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            self.transport.close()
            return
        if self.handshake_complete:
            self.queue.put_nowait({"type": "websocket.disconnect", "code": GOING_AWAY})
            self.conn.send_close(GOING_AWAY)
            self.transport.write(b"".join(self.conn.data_to_send()))
        else:
            self.send_500_response()
        self.transport.close()


def run(app: Any, settings: Settings, log_format: LogFormat, **options: Any) -> None:
    """``uvicorn.run`` with Starling's logging, shutdown and WebSocket settings; ``options``
    are uvicorn's (host, port, workers, factory...)."""
    uvicorn.run(
        app,
        log_config=logging_config(settings.log_level, log_format),
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        ws=f"{__name__}:{GoingAwayWebSocketProtocol.__name__}",
        # The client address is Starling's to work out (TRUSTED_PROXY_HOPS, app.client_address):
        # uvicorn's own X-Forwarded-For handling would trust any proxy on loopback.
        proxy_headers=False,
        # A WebSocket frame is a request too (socket_protocols checks it again, with an answer).
        ws_max_size=settings.request_body_max_bytes,
        **options,
    )
