"""What one request (or one WebSocket connection) knows: services, the viewer, loaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from starling.loaders import Loaders
from starling.resolvers import limits
from starling.resolvers.audience import ViewerSlots
from starling.resolvers.capacity import LiveCapacity, Tally
from starling.resolvers.errors import Unauthenticated
from starling.resolvers.first_trip import FirstTrip
from starling.resolvers.limits import RateLimits
from starling.resolvers.sessions import Session, SessionWatch
from starling.resolvers.tokens import Viewer, is_revoked, read_token, revoked_by_reply
from starling.store import auth_state, relations
from starling.store.pubsub.hub import EventHub
from starling.store.relations import Relations
from starling.store.services import Services

_BEARER = "bearer "
_UNSET: Any = object()


@dataclass
class RequestContext:
    services: Services
    authorization: str | None = None
    # Set by the WebSocket protocols from the `connection_init` payload.
    connection_params: dict[str, Any] | None = None
    request: Any = None
    response: Any = None
    # The API process's live-event hub (subscriptions); None outside an API process.
    hub: EventHub | None = None
    # The client's address (``app.client_address``); None for in-process callers.
    client_address: str | None = None
    # The rate limits this request is subject to; None = not limited (RATE_LIMITS_ENABLED
    # false, or an in-process caller such as seeding).
    limits: RateLimits | None = None
    # The API process's caps and pace of live work, and the subscriptions this context (a
    # WebSocket connection, or one HTTP request) holds; None outside an API process.
    live: LiveCapacity | None = None
    subscriptions: Tally | None = None
    # WebSockets: the process's watch of signed-in connections, this connection's place in it
    # (from `connection_init`), and how to close the connection.
    sessions: SessionWatch | None = None
    session: Session | None = None
    close_connection: Callable[[int, str], Awaitable[None]] | None = None
    # Set for a shared subscription execution (``schema.shared``), which runs without a
    # viewer: viewer fields record where they are, to be filled in per subscriber.
    viewer_slots: ViewerSlots | None = None
    # Reads resolvers planned for the request's first round trip (``first_round_trip``).
    first_trip: FirstTrip = field(default_factory=FirstTrip, repr=False)
    _viewer: Any = field(default=_UNSET, repr=False)
    _loaders: Loaders | None = field(default=None, repr=False)
    _relations: Relations | None = field(default=None, repr=False)

    def _credentials(self) -> str | None:
        if self.connection_params is not None:
            value = self.connection_params.get("authorization") or self.connection_params.get("Authorization")
            return value if isinstance(value, str) else None
        return self.authorization

    async def viewer(self) -> Viewer | None:
        """The signed-in viewer, or None; a bad, expired or revoked token is anonymous
        for reads, and ``require_viewer`` turns it into UNAUTHENTICATED. A WebSocket whose
        token died meanwhile (``resolvers.sessions``) is anonymous from that moment."""
        if self._viewer is _UNSET:
            self._viewer = await self._authenticate()
        if self.session is not None and self.session.ended:
            return None
        viewer: Viewer | None = self._viewer
        return viewer

    def watch_session(self, viewer: Viewer) -> None:
        """Have the process's session watch close this connection when ``viewer``'s token dies."""
        if self.sessions is not None and self.close_connection is not None and self.session is None:
            self.session = self.sessions.watch(viewer, self.close_connection)

    def end_session(self) -> None:
        if self.session is not None:
            self.session.forget()

    def _token_viewer(self) -> Viewer | None:
        """Whom the credentials name, if they are a well-signed, unexpired token (no I/O)."""
        credentials = self._credentials()
        if not credentials or not credentials.lower().startswith(_BEARER):
            return None
        secret = self.services.settings.token_secret
        assert secret is not None, "the app sets TOKEN_SECRET before serving"
        return read_token(secret, credentials[len(_BEARER) :].strip())

    async def _authenticate(self) -> Viewer | None:
        viewer = self._token_viewer()
        if viewer is None or await is_revoked(self.services, viewer):
            return None
        return viewer

    async def first_round_trip(self, cost: int | None = None) -> int | None:
        """The request's first Redis round trip, one pipeline: the token check (unless this
        context checked already), the charge of ``cost`` to the query budget
        (``resolvers.limits.charge_cost``) and the reads planned on ``first_trip`` for the
        token's user. Returns what is left of the budget, None when no budget applies.

        Redis unreachable: the token check asks MongoDB, the charge is skipped (fails open,
        as every limit) and planned reads are left to their resolvers."""
        checked = self._viewer is not _UNSET
        candidate = await self.viewer() if checked else self._token_viewer()
        viewer_id = candidate.user_id if candidate is not None else None
        charges = limits.cost_charges(self.limits, viewer_id) if cost is not None else []
        services = self.services
        try:
            async with services.redis.pipeline(transaction=False) as pipe:
                if candidate is not None and not checked:
                    auth_state.queue_read(pipe, services.keys, candidate.user_id, candidate.token_id)
                if charges and self.limits is not None and cost is not None:
                    self.limits.queue_spend(pipe, charges, cost)
                if candidate is not None:
                    self.first_trip.queue(pipe, candidate.user_id)
                replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            limits.skipped(charges, exc)
            if not checked:
                self._viewer = await self._authenticate()
            return None
        if candidate is not None and not checked:
            reply, replies = replies[0], replies[1:]
            revoked = await revoked_by_reply(services, candidate, reply)
            self._viewer = None if revoked else candidate
        elif not checked:
            self._viewer = None
        spent, planned = replies[: len(charges)], replies[len(charges) :]
        if candidate is not None:
            self.first_trip.receive(planned)
        if not charges or self.limits is None or cost is None:
            return None
        if self._viewer is None and candidate is not None:
            # A revoked token: its request is anonymous, and pays from the address's budget too.
            return await limits.charge_cost_anonymously(self, cost)
        decisions = self.limits.settle_replies(charges, cost, spent)
        return decisions[0].remaining

    async def require_viewer(self) -> Viewer:
        viewer = await self.viewer()
        if viewer is None:
            if self._credentials():
                raise Unauthenticated("Your token is invalid, expired or revoked: log in again.")
            raise Unauthenticated()
        return viewer

    async def require_writer(self) -> Viewer:
        """The signed-in viewer, with one write counted against their writes budget."""
        viewer = await self.require_viewer()
        await limits.write_attempt(self, viewer.user_id)
        return viewer

    async def viewer_id(self) -> int | None:
        viewer = await self.viewer()
        return viewer.user_id if viewer else None

    async def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.services, await self.viewer_id())
        return self._loaders

    def forget_loaders(self) -> None:
        """Start a new loader cache. A WebSocket connection keeps one context for its whole
        life, so each subscription event calls this to be hydrated from current data (the
        viewer's blocks and mutes too)."""
        self._loaders = None
        self._relations = None

    async def relations(self) -> Relations:
        """The viewer's blocks (both ways) and mutes, read once per request from Redis
        (``store.relations``; MongoDB when Redis is unreachable); none when anonymous."""
        if self._relations is None:
            viewer_id = await self.viewer_id()
            if viewer_id is None:
                self._relations = relations.NONE
            else:
                try:
                    self._relations = await relations.read_relations(self.services, viewer_id)
                except (RedisError, OSError):
                    self._relations = await relations.relations_from_mongo(self.services, viewer_id)
        return self._relations

    def know_relations(self, found: Relations) -> None:
        """The viewer's relations, read by the caller with other data (the feed's pipeline)."""
        self._relations = found

    def require_hub(self) -> EventHub:
        if self.hub is None:
            raise RuntimeError("live subscriptions need the API process's event hub")
        return self.hub
