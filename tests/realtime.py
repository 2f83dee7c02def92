"""Real-time test kit: the app on a real uvicorn socket, and gql (a GraphQL client nobody
here wrote) subscribing over a real WebSocket with either protocol."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from starlette.applications import Starlette

from starling.cli import build_app
from starling.config import Settings
from starling.store.mongo import Mongo
from starling.store.pubsub.hub import EventHub
from starling.store.services import Services
from tests.api import Account, Api, eventually
from tests.live import live_server

GRAPHQL_TRANSPORT_WS = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL  # "graphql-transport-ws"
GRAPHQL_WS = WebsocketsTransport.APOLLO_SUBPROTOCOL  # "graphql-ws", the legacy protocol
PROTOCOLS = [GRAPHQL_TRANSPORT_WS, GRAPHQL_WS]

DELIVERY_SECONDS = 2.0


@dataclass
class LiveApp:
    app: Starlette
    url: str
    api: Api

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"

    @property
    def hub(self) -> EventHub:
        return self.app.state.hub

    @property
    def services(self) -> Services:
        return self.app.state.services

    def client(
        self, token: str | None = None, protocol: str = GRAPHQL_TRANSPORT_WS, **options: Any
    ) -> Client:
        """A gql client speaking ``protocol``, signed in with ``token`` (connection_init)."""
        payload = {"authorization": f"Bearer {token}"} if token else {}
        return Client(
            transport=WebsocketsTransport(
                url=self.ws_url, subprotocols=[protocol], init_payload=payload, **options
            )
        )

    async def settled(self, subscribers: int) -> None:
        """Wait until this process holds ``subscribers`` live subscriptions and Redis has
        every channel they need (clients cannot know when the server has subscribed)."""

        async def check() -> bool:
            if self.hub.subscriber_count != subscribers:
                return False
            channels = sorted(self.hub.channels)
            counts = await self.services.redis.pubsub_numsub(*channels) if channels else []
            return all(count > 0 for _, count in counts)

        await eventually(check)

    async def released(self, channels: list[str]) -> None:
        """Wait until nobody (no process) subscribes to ``channels`` any more."""

        async def check() -> bool:
            counts = await self.services.redis.pubsub_numsub(*channels)
            return all(count == 0 for _, count in counts)

        await eventually(check)


@contextlib.asynccontextmanager
async def serve_live(settings: Settings, mongo: Mongo | None = None) -> AsyncIterator[LiveApp]:
    app = build_app(settings, mongo=mongo)
    async with live_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield LiveApp(app=app, url=url, api=Api(http))


class Listener:
    """One gql subscription running in the background; its results queue up for ``next``."""

    def __init__(self, client: Client, query: str, variables: dict[str, Any] | None = None) -> None:
        self._client = client
        self._request = GraphQLRequest(query, variable_values=variables)
        self._results: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with self._client as session:
            async for result in session.subscribe(self._request):
                await self._results.put(result)

    async def __aenter__(self) -> Listener:
        self.task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Unsubscribe and close the socket, as a client leaving mid-stream does."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TransportQueryError):
            await self.task

    async def next(self, within: float = DELIVERY_SECONDS) -> dict[str, Any]:
        """The next result, which must arrive ``within`` seconds; an error the subscription
        ended with is raised here."""
        assert self.task is not None
        getter = asyncio.ensure_future(self._results.get())
        done, _ = await asyncio.wait({getter, self.task}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        if self.task in done:
            self.task.result()  # raises what ended the subscription
            raise AssertionError("the subscription completed without a result")
        raise AssertionError(f"no result within {within}s")

    async def error(self) -> list[dict[str, Any]]:
        """The errors the subscription ends with (it must end with some)."""
        try:
            result = await self.next()
        except TransportQueryError as exc:
            assert exc.errors
            return exc.errors
        raise AssertionError(f"expected an error, got {result}")


def codes(errors: list[dict[str, Any]]) -> list[str]:
    return [error["extensions"]["code"] for error in errors]


# -- engagement over HTTP (what the live streams announce) -------------------------------


async def like(api: Api, who: Account, tweet_id: str) -> None:
    await api.gql("mutation($id: ID!) { likeTweet(tweetId: $id) { id } }", {"id": tweet_id}, who.token)


async def unlike(api: Api, who: Account, tweet_id: str) -> None:
    await api.gql("mutation($id: ID!) { unlikeTweet(tweetId: $id) { id } }", {"id": tweet_id}, who.token)


async def comment(api: Api, who: Account, tweet_id: str, text: str) -> str:
    data = await api.gql(
        "mutation($id: ID!, $t: String!) { addComment(tweetId: $id, text: $t) { id } }",
        {"id": tweet_id, "t": text},
        who.token,
    )
    return data["addComment"]["id"]


async def retweet(api: Api, who: Account, tweet_id: str) -> str:
    data = await api.gql("mutation($id: ID!) { retweet(tweetId: $id) { id } }", {"id": tweet_id}, who.token)
    return data["retweet"]["id"]


async def undo_retweet(api: Api, who: Account, tweet_id: str) -> None:
    await api.gql("mutation($id: ID!) { undoRetweet(tweetId: $id) }", {"id": tweet_id}, who.token)
