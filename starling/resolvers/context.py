"""What one request (or one WebSocket connection) knows: services, the viewer, loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starling.loaders import Loaders
from starling.resolvers.errors import Unauthenticated
from starling.resolvers.tokens import Viewer, is_revoked, read_token
from starling.store.pubsub.hub import EventHub
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
    _viewer: Any = field(default=_UNSET, repr=False)
    _loaders: Loaders | None = field(default=None, repr=False)

    def _credentials(self) -> str | None:
        if self.connection_params is not None:
            value = self.connection_params.get("authorization") or self.connection_params.get("Authorization")
            return value if isinstance(value, str) else None
        return self.authorization

    async def viewer(self) -> Viewer | None:
        """The signed-in viewer, or None; a bad, expired or revoked token is anonymous
        for reads, and ``require_viewer`` turns it into UNAUTHENTICATED."""
        if self._viewer is _UNSET:
            self._viewer = await self._authenticate()
        viewer: Viewer | None = self._viewer
        return viewer

    async def _authenticate(self) -> Viewer | None:
        credentials = self._credentials()
        if not credentials or not credentials.lower().startswith(_BEARER):
            return None
        secret = self.services.settings.token_secret
        assert secret is not None, "the app sets TOKEN_SECRET before serving"
        viewer = read_token(secret, credentials[len(_BEARER) :].strip())
        if viewer is None or await is_revoked(self.services, viewer):
            return None
        return viewer

    async def require_viewer(self) -> Viewer:
        viewer = await self.viewer()
        if viewer is None:
            if self._credentials():
                raise Unauthenticated("Your token is invalid, expired or revoked: log in again.")
            raise Unauthenticated()
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
        life, so each subscription event calls this to be hydrated from current data."""
        self._loaders = None

    def require_hub(self) -> EventHub:
        if self.hub is None:
            raise RuntimeError("live subscriptions need the API process's event hub")
        return self.hub
