"""Signed-in WebSockets end when their token does.

A WebSocket authenticates once, at ``connection_init``, and may live for days. Each API
process keeps a ``SessionWatch`` of its signed-in connections and closes one (code 4401,
"Unauthorized": each subscription ends, and nothing more runs on it) when its token dies:

- **revoked**: at once. ``logOut`` and ``changePassword`` announce the revocation on
  ``Keys.revocation_events`` (``resolvers.tokens``); the watch listens there through the
  process's event hub, one channel for the whole process.
- **expired**: by a timer set for the token's expiry.
- **missed**: pub/sub delivers at most once (an event published while the hub reconnects
  is lost), so every ``ws_token_recheck_seconds`` the watch re-checks every token it holds,
  in one pipelined round trip.

Until its close is through, a connection's context answers as if anonymous
(``Session.ended``), so nothing slips in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import PyMongoError

from starling.resolvers.tokens import Viewer, revoked
from starling.store.pubsub import Event, EventHub, SubscriberDropped
from starling.store.services import Services

log = logging.getLogger(__name__)

UNAUTHORIZED = 4401
REVOKED_REASON = "Unauthorized: your token was revoked; log in again"
EXPIRED_REASON = "Unauthorized: your token has expired; log in again"

Close = Callable[[int, str], Awaitable[None]]


class Session:
    """One signed-in connection: its viewer and how to close it."""

    __slots__ = ("_close", "_timer", "_watch", "ended", "viewer")

    def __init__(self, watch: SessionWatch, viewer: Viewer, close: Close) -> None:
        self._watch = watch
        self.viewer = viewer
        self._close = close
        self.ended = False
        delay = (viewer.expires_at - datetime.now(UTC)).total_seconds()
        self._timer = asyncio.get_running_loop().call_later(max(delay, 0.0), self.end, EXPIRED_REASON)

    def end(self, reason: str) -> None:
        """Close the connection (once), without waiting."""
        if self.ended:
            return
        self.ended = True
        self.forget()
        self._watch.spawn(self._close(UNAUTHORIZED, reason))

    def forget(self) -> None:
        """The connection is over: stop watching it."""
        self._timer.cancel()
        self._watch.discard(self)


class SessionWatch:
    """This process's signed-in connections, ended when their tokens die."""

    def __init__(self, services: Services, hub: EventHub, recheck_seconds: float) -> None:
        self._services = services
        self._hub = hub
        self._recheck_seconds = recheck_seconds
        self._by_user: dict[int, set[Session]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []

    @property
    def sessions(self) -> list[Session]:
        return [session for sessions in self._by_user.values() for session in sessions]

    def watch(self, viewer: Viewer, close: Close) -> Session:
        session = Session(self, viewer, close)
        self._by_user.setdefault(viewer.user_id, set()).add(session)
        return session

    def discard(self, session: Session) -> None:
        sessions = self._by_user.get(session.viewer.user_id)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._by_user[session.viewer.user_id]

    def spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- what ends sessions -------------------------------------------------------------

    def revoke(self, event: Event) -> None:
        """A revocation event: ``{user_id, token_id}`` (one token) or ``{user_id,
        generation}`` (every token of an older generation)."""
        user_id, token_id, generation = event.get("user_id"), event.get("token_id"), event.get("generation")
        for session in list(self._by_user.get(user_id, ())) if isinstance(user_id, int) else []:
            viewer = session.viewer
            if viewer.token_id == token_id or (
                isinstance(generation, int) and viewer.generation < generation
            ):
                session.end(REVOKED_REASON)

    async def recheck(self) -> int:
        """Check every watched token again; ends the revoked ones, returns how many."""
        sessions = self.sessions
        if not sessions:
            return 0
        answers = await revoked(self._services, [session.viewer for session in sessions])
        ended = [session for session, dead in zip(sessions, answers, strict=True) if dead]
        for session in ended:
            session.end(REVOKED_REASON)
        return len(ended)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._listen_forever(), name="session-watch-events"),
            asyncio.create_task(self._recheck_forever(), name="session-watch-recheck"),
        ]

    async def stop(self) -> None:
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        for task in [*self._loops, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loops = []
        for session in self.sessions:
            session.forget()

    async def _listen_forever(self) -> None:
        channel = self._services.keys.revocation_events()
        while True:
            with self._hub.subscribe([channel]) as events:
                try:
                    async for event in events:
                        self.revoke(event)
                except SubscriberDropped:
                    log.warning(
                        "the session watch fell behind its revocation events; re-checking every token"
                    )
            self.spawn(self.recheck())

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self._recheck_seconds)
            try:
                ended = await self.recheck()
            except PyMongoError as exc:  # MongoDB answers when Redis cannot; the next round retries
                log.warning("could not re-check the tokens of open WebSockets (%s)", exc)
                continue
            except Exception:
                log.exception("re-checking the tokens of open WebSockets failed")
                continue
            if ended:
                log.info("closed %d WebSockets whose revocation event was missed", ended)
