"""Shared execution of live home feeds: one GraphQL execution per event for every local
subscriber of the same operation.

A ``homeFeed`` or ``homeFeedEvents`` subscription without arguments whose selection is
*shareable* (below) is not run by Strawberry (no operation task, no graphql-core
subscription generator): the socket's handler (``socket_protocols``) hands it to
``SharedFeeds.open``, which keeps a small routing record (``SharedSubscription``) per
subscriber in the hub, under the group of subscribers of the same operation (document,
operation name and variables). An event reaching any of them is executed once for the group
(without a viewer), its result serialised once, and each subscriber's frame is those bytes
spliced with its operation id; a burst that reaches the process in many Redis reads reuses
the execution for ``SHARED_RESULT_SECONDS``.

What depends on the viewer is read for the whole audience at once (``resolvers.audience``):

- the home feed's blocks and mutes: a tweet hidden from a subscriber is not sent to it;
- the viewer fields ``viewerHasLiked``, ``viewerHasRetweeted``, ``viewerHasBookmarked``
  (Tweet) and ``viewerIsFollowing``, ``followsViewer`` (User): during the shared execution
  each resolves to a marker recorded with its path (``ViewerSlots``), and every subscriber's
  frame has its own ``true``/``false`` in the marker's place.

Shareable: the root field and then only fields whose value is the same for every viewer
(leaves of Tweet, User, Media, TweetDeleted; ``author``, ``media``, ``retweetOf``,
``tweet`` of TweetPosted) or one of the patched viewer fields, with no directive but
``@include``/``@skip``. Anything else (``quoteOf``, ``mentions``, connections, the block
and mute flags, ``after``) runs per subscriber through Strawberry as before, and so does a
subscription whose first checks would refuse it (no viewer, a cap reached, a spent budget,
an invalid document): the refusal is Strawberry's, unchanged.

The record holds the subscription's places (the connection's count, the viewer's
presence) until it ends: the client completes or disconnects, the connection is terminated
(the session died), the hub stops (``complete``), or the subscriber falls
``subscriber_queue_size`` frames behind its socket (a ``RATE_LIMITED`` error, then
``complete``). Frames go out without waiting: a socket that cannot take one at once
(the peer is not reading) gets the rest queued behind it, never holding up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Coroutine, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    Executor,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute,
    get_named_type,
    get_operation_ast,
    is_leaf_type,
    parse,
    validate,
)
from graphql.pyutils import is_awaitable
from prometheus_client import Counter

from starling.resolvers import audience, live
from starling.resolvers.audience import ViewerFact, ViewerSlots
from starling.resolvers.capacity import LiveCapacity
from starling.resolvers.context import RequestContext
from starling.resolvers.errors import RateLimited
from starling.resolvers.limits import charge_cost
from starling.resolvers.live import FELL_BEHIND, RECENT_TWEETS_REMEMBERED, FeedChange
from starling.schema.budget import UNCOSTED_OPERATION
from starling.schema.errors import classify
from starling.schema.execution import GraphQLCoreExecutor
from starling.schema.feed_events import feed_event
from starling.schema.limits import Documents
from starling.schema.types import Tweet
from starling.store.documents import CachedTweetDoc
from starling.store.pubsub import Event
from starling.store.pubsub.hub import DROPPED
from starling.store.pubsub.publishing import is_deletion
from starling.store.services import Services

log = logging.getLogger(__name__)

SHARED_EXECUTIONS = Counter(
    "starling_live_shared_executions_total",
    "GraphQL executions of live events for a group of subscribers of the same operation",
)
SHARED_DELIVERIES = Counter(
    "starling_live_shared_deliveries_total", "Frames of shared executions sent to subscribers"
)

# How long an event's shared result serves the group: one burst (a fan-out batch reaching
# thousands of local subscribers) arrives over many reads of the Redis connection.
SHARED_RESULT_SECONDS = 2.0
SHARED_RESULTS_KEPT = 64  # per group: the bursts in flight at once
PLANS_KEPT = 256  # documents whose shareability is remembered
# Frames sent between two yields to the event loop, so a burst does not hold it.
FRAMES_PER_YIELD = 512

SHARED_ROOTS = frozenset({"homeFeed", "homeFeedEvents"})
SHARED_OBJECT_FIELDS = frozenset(
    {("Tweet", "author"), ("Tweet", "media"), ("Tweet", "retweetOf"), ("TweetPosted", "tweet")}
)
PATCHED_FIELDS: Mapping[tuple[str, str], ViewerFact] = {
    ("Tweet", "viewerHasLiked"): ViewerFact.LIKED,
    ("Tweet", "viewerHasRetweeted"): ViewerFact.RETWEETED,
    ("Tweet", "viewerHasBookmarked"): ViewerFact.BOOKMARKED,
    ("User", "viewerIsFollowing"): ViewerFact.FOLLOWING,
    ("User", "followsViewer"): ViewerFact.FOLLOWED_BY,
}
# Leaves whose value depends on the viewer in a way no batched read covers here.
VIEWER_LEAVES = frozenset(
    {
        ("User", "viewerHasBlocked"),
        ("User", "blocksViewer"),
        ("User", "viewerHasMuted"),
        ("Tweet", "quotedTweetUnavailable"),
    }
)
INERT_DIRECTIVES = frozenset({"include", "skip"})
CONNECTION = live.CONNECTION


@dataclass(frozen=True, slots=True)
class SharedPlan:
    """A shareable subscription document, parsed and checked."""

    document: DocumentNode
    operation_name: str | None
    field: str  # homeFeed or homeFeedEvents


def _shareable(
    schema: GraphQLSchema,
    parent: GraphQLNamedType,
    selections: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> bool:
    for selection in selections.selections:
        if any(directive.name.value not in INERT_DIRECTIVES for directive in selection.directives or ()):
            return False
        if isinstance(selection, FieldNode):
            if not _shareable_field(schema, parent, selection, fragments):
                return False
            continue
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is None:
                return False
            inner = fragment.selection_set
            scope = schema.get_type(fragment.type_condition.name.value)
        elif isinstance(selection, InlineFragmentNode):
            condition, inner = selection.type_condition, selection.selection_set
            scope = schema.get_type(condition.name.value) if condition is not None else parent
        else:
            return False
        if scope is None or not _shareable(schema, scope, inner, fragments):
            return False
    return True


def _shareable_field(
    schema: GraphQLSchema,
    parent: GraphQLNamedType,
    field: FieldNode,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> bool:
    name = field.name.value
    if name == "__typename":
        return True
    if not isinstance(parent, GraphQLObjectType) or name not in parent.fields or field.arguments:
        return False
    key = (parent.name, name)
    named = get_named_type(parent.fields[name].type)
    if is_leaf_type(named):
        return key not in VIEWER_LEAVES
    if key not in SHARED_OBJECT_FIELDS or field.selection_set is None:
        return False
    return _shareable(schema, named, field.selection_set, fragments)


def shared_plan(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> SharedPlan | None:
    """The plan of a subscription whose events can be executed once for every subscriber
    (module doc), or None."""
    operation = get_operation_ast(document, operation_name)
    if (
        not isinstance(operation, OperationDefinitionNode)
        or operation.operation is not OperationType.SUBSCRIPTION
    ):
        return None
    root = operation.selection_set.selections
    if len(root) != 1 or not isinstance(root[0], FieldNode) or root[0].directives:
        return None
    field = root[0]
    if field.name.value not in SHARED_ROOTS or field.arguments or field.selection_set is None:
        return None
    subscription = schema.subscription_type
    if subscription is None:
        return None
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    named = get_named_type(subscription.fields[field.name.value].type)
    if not _shareable(schema, named, field.selection_set, fragments):
        return None
    return SharedPlan(document, operation_name, field.name.value)


class SharedOwner(Protocol):
    """The socket handler a record sends through (``socket_protocols``)."""

    def frame_prefix(self, operation_id: str) -> str:
        """The start of a result frame up to its payload: ``{"id":..,"type":"next","payload":``."""
        ...

    def send_text(self, text: str) -> Coroutine[Any, Any, None]: ...

    def write_now(self, text: str) -> bool:
        """Send a frame at once if the socket takes it without waiting; False if not (then
        ``send_text``); raises when the socket is gone."""
        ...

    async def end_shared(self, operation_id: str, errors: list[dict[str, Any]] | None) -> None:
        """The server ended the subscription: send its last frames (``errors`` first, if
        any, then ``complete``) and forget it."""
        ...


class _Resumed:
    """Awaits the rest of a coroutine already stepped once (``SharedSubscription._start``):
    a frame that went out at once costs no task; one that has to wait gets a task then."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, None], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, None]:
        coro, value = self._coro, self._yielded
        while True:
            try:
                sent = yield value
            except BaseException as exc:  # cancellation included: the coroutine decides
                try:
                    value = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    value = coro.send(sent)
                except StopIteration:
                    return


class SharedSubscription:
    """One subscriber of a shared group: what the hub routes its channels' events to."""

    __slots__ = (
        "_backlog",
        "_group",
        "_inflight",
        "_owner",
        "_recent",
        "channels",
        "closed",
        "ctx",
        "operation_id",
        "prefix",
        "viewer_id",
    )

    def __init__(
        self,
        group: _Group,
        owner: SharedOwner,
        ctx: RequestContext,
        operation_id: str,
        viewer_id: int,
        channels: frozenset[str],
    ) -> None:
        self._group = group
        self._owner = owner
        self.ctx = ctx
        self.operation_id = operation_id
        self.viewer_id = viewer_id
        self.channels = channels
        self.prefix = owner.frame_prefix(operation_id)
        self.closed = False
        self._recent: deque[int] | None = None
        self._backlog: deque[str] | None = None
        self._inflight: asyncio.Future[None] | None = None

    # -- the hub's side (Sink) ---------------------------------------------------------

    def offer(self, event: Event) -> bool:
        if self.closed:
            return True
        if self._backlog is not None and len(self._backlog) >= self._group.feeds.hub_queue_size:
            return False  # its socket has not taken the frames it has: dropped
        self._group.receive(self, event)
        return True

    def end(self, marker: object) -> None:
        if self.closed:
            return
        self.close()
        errors = _fell_behind() if marker is DROPPED else None
        task = asyncio.ensure_future(self._owner.end_shared(self.operation_id, errors))
        task.add_done_callback(_retrieve)

    # -- the group's side --------------------------------------------------------------

    def first_time(self, tweet_id: int) -> bool:
        """Whether this subscriber has not been sent ``tweet_id`` yet (a tweet announced on
        two channels, or twice, is delivered once: ``resolvers.live``)."""
        recent = self._recent
        if recent is None:
            recent = self._recent = deque(maxlen=RECENT_TWEETS_REMEMBERED)
        elif tweet_id in recent:
            return False
        recent.append(tweet_id)
        return True

    def send(self, frame: str) -> None:
        if self.closed:
            return
        if self._inflight is not None:
            if self._backlog is None:
                self._backlog = deque()
            self._backlog.append(frame)
            return
        self._start(frame)

    def _start(self, frame: str) -> None:
        try:
            if self._owner.write_now(frame):
                return
        except Exception:  # the socket is gone: the handler ends the operation itself
            self.close()
            return
        coro = self._owner.send_text(frame)
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
        except Exception:  # the socket is gone: the handler ends the operation itself
            self.close()
            return
        self._inflight = asyncio.ensure_future(_Resumed(coro, yielded))
        self._inflight.add_done_callback(self._sent)

    def _sent(self, sending: asyncio.Future[None]) -> None:
        self._inflight = None
        if sending.cancelled() or sending.exception() is not None:
            self.close()
            return
        while self._backlog and self._inflight is None:
            self._start(self._backlog.popleft())

    def close(self) -> None:
        """Let go of everything the subscription holds (idempotent; no frame is sent)."""
        if self.closed:
            return
        self.closed = True
        self._backlog = None
        self._group.leave(self)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("a shared subscription's last frames were not sent: %s", task.exception())


def _fell_behind() -> list[dict[str, Any]]:
    return [dict(classify(GraphQLError(FELL_BEHIND, original_error=RateLimited(FELL_BEHIND))).formatted)]


# The marker a viewer field's value has in the shared result until each frame fills it in;
# random per process, so that no tweet text can contain it.
_MARKER = f"\x00slot-{secrets.token_hex(8)}-"
_MARKED = re.compile(re.escape(orjson.dumps(_MARKER).decode()[:-1]) + r'(\d+)"')


@dataclass(slots=True)
class _Result:
    """An event's shared result: the payload text around its viewer slots (``segments``
    has one piece more than ``slots``), and the tweet it shows (None: a deletion)."""

    segments: list[str]
    slots: list[tuple[ViewerFact, int]]
    tweet: CachedTweetDoc | None
    original: CachedTweetDoc | None
    made: float


class _Group:
    """The subscribers of one operation, and the events waiting to be executed for them."""

    def __init__(self, feeds: SharedFeeds, key: tuple[str, ...], plan: SharedPlan, variables: dict[str, Any]):
        self.feeds = feeds
        self.key = key
        self.plan = plan
        self.variables = variables
        self.members = 0
        self._pending: dict[tuple[int, bool], list[SharedSubscription]] = {}
        self._results: OrderedDict[tuple[int, bool], _Result | None] = OrderedDict()
        self._made: dict[tuple[int, bool], float] = {}
        self._worker: asyncio.Task[None] | None = None

    def receive(self, subscriber: SharedSubscription, event: Event) -> None:
        deleted = is_deletion(event)
        if deleted and self.plan.field != "homeFeedEvents":
            return  # homeFeed shows tweets entering the feed only
        self._pending.setdefault((event["tweet_id"], deleted), []).append(subscriber)
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="shared-feed")

    def leave(self, subscriber: SharedSubscription) -> None:
        self.feeds.release(self, subscriber)

    async def _work(self) -> None:
        try:
            while self._pending:
                pending, self._pending = self._pending, {}
                for (tweet_id, deleted), subscribers in pending.items():
                    try:
                        async with self.feeds.pace():
                            await self._deliver(tweet_id, deleted, subscribers)
                    except Exception:
                        log.exception("a shared live event failed; its subscribers miss it")
        finally:
            self._worker = None

    async def _deliver(self, tweet_id: int, deleted: bool, subscribers: list[SharedSubscription]) -> None:
        audience_ = [s for s in subscribers if not s.closed and (deleted or s.first_time(tweet_id))]
        if not audience_:
            return
        result = await self._result(tweet_id, deleted)
        if result is None:  # deleted meanwhile
            return
        services = self.feeds.services
        assert services is not None  # set by the first open
        viewers = {s.viewer_id for s in audience_}
        if result.tweet is not None:
            hidden = await audience.hidden_from(services, result.tweet, result.original, viewers)
            if hidden:
                audience_ = [s for s in audience_ if s.viewer_id not in hidden]
        facts = {
            slot: await audience.holders(services, slot[0], slot[1], viewers) for slot in set(result.slots)
        }
        segments, slots = result.segments, result.slots
        shared_payload = segments[0] + "}" if not slots else None
        for n, subscriber in enumerate(audience_):
            if shared_payload is not None:
                subscriber.send(subscriber.prefix + shared_payload)
            else:
                viewer = subscriber.viewer_id
                parts = [subscriber.prefix, segments[0]]
                for slot, segment in zip(slots, segments[1:], strict=True):
                    parts.append("true" if viewer in facts[slot] else "false")
                    parts.append(segment)
                parts.append("}")
                subscriber.send("".join(parts))
            if n % FRAMES_PER_YIELD == FRAMES_PER_YIELD - 1:
                await asyncio.sleep(0)
        SHARED_DELIVERIES.inc(len(audience_))
        live.LIVE_EVENTS_SENT.inc(len(audience_))

    async def _result(self, tweet_id: int, deleted: bool) -> _Result | None:
        key = (tweet_id, deleted)
        now = time.monotonic()
        while self._results:  # oldest first: drop what has served its burst
            oldest = next(iter(self._results))
            if now - self._made[oldest] < SHARED_RESULT_SECONDS and len(self._results) <= SHARED_RESULTS_KEPT:
                break
            del self._results[oldest], self._made[oldest]
        if key in self._results:
            return self._results[key]
        result = await self._execute(tweet_id, deleted, now)
        self._results[key], self._made[key] = result, now
        return result

    async def _execute(self, tweet_id: int, deleted: bool, now: float) -> _Result | None:
        feeds = self.feeds
        slots = ViewerSlots()
        assert feeds.services is not None
        ctx = RequestContext(services=feeds.services, viewer_slots=slots)
        tweet: CachedTweetDoc | None = None
        original: CachedTweetDoc | None = None
        if deleted:
            root: Any = feed_event(FeedChange(tweet_id, None))
        else:
            tweets = (await ctx.loaders()).tweets
            tweet = await tweets.load(tweet_id)
            if tweet is None:
                return None
            if tweet.get("retweet_of") is not None:
                original = await tweets.load(tweet["retweet_of"])
            root = (
                Tweet.from_doc(tweet)
                if self.plan.field == "homeFeed"
                else feed_event(FeedChange(tweet_id, tweet))
            )
        outcome = execute(
            feeds.schema,
            self.plan.document,
            root_value=root,
            context_value=ctx,
            variable_values=self.variables,
            operation_name=self.plan.operation_name,
            executor_class=feeds.executor_class,
        )
        if is_awaitable(outcome):
            outcome = await outcome
        assert isinstance(outcome, ExecutionResult)
        SHARED_EXECUTIONS.inc()
        data = outcome.data
        if data is not None:
            for n, (path, _, _) in enumerate(slots.found):
                node: Any = data
                for step in path[:-1]:
                    node = node[step]
                node[path[-1]] = f"{_MARKER}{n}"
        payload: dict[str, Any] = {"data": data}
        if outcome.errors:
            payload["errors"] = [classify(error).formatted for error in outcome.errors]
        parts = _MARKED.split(orjson.dumps(payload).decode())
        return _Result(
            segments=parts[0::2],
            slots=[(slots.found[int(n)][1], slots.found[int(n)][2]) for n in parts[1::2]],
            tweet=tweet,
            original=original,
            made=now,
        )


class SharedFeeds:
    """The process's shared home feed groups (module doc); one per API process."""

    def __init__(
        self,
        schema: GraphQLSchema,
        documents: Documents | None,
        executor_class: type[Executor] = GraphQLCoreExecutor,
    ) -> None:
        self.schema = schema
        self.executor_class = executor_class  # the schema's (compiled plans, when it has them)
        self._documents = documents
        self._plans: OrderedDict[tuple[str, str | None], SharedPlan | None] = OrderedDict()
        self._groups: dict[tuple[str, ...], _Group] = {}
        # The process's services, hub and pace: those of the connections (one app each).
        self.services: Services | None = None
        self._live: LiveCapacity | None = None
        self.hub_queue_size = 0

    @property
    def groups(self) -> int:
        """Operations with shared subscribers now."""
        return len(self._groups)

    def pace(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._live.pace.turn() if self._live is not None else contextlib.nullcontext()

    def plan(
        self, query: str, operation_name: str | None, variables: Mapping[str, Any]
    ) -> tuple[SharedPlan, int | None] | None:
        """The plan and cost of a shareable subscription that passes the limits, else None."""
        key = (query, operation_name)
        if key in self._plans:
            self._plans.move_to_end(key)
            plan = self._plans[key]
        else:
            plan = self._plans[key] = self._plan(query, operation_name)
            if len(self._plans) > PLANS_KEPT:
                self._plans.popitem(last=False)
        if plan is None:
            return None
        if self._documents is None:
            return plan, None
        checked = self._documents.parse(query)
        errors, cost = self._documents.errors(checked, self.schema, operation_name, variables)
        return None if errors else (plan, cost)

    def _plan(self, query: str, operation_name: str | None) -> SharedPlan | None:
        try:
            document = self._documents.parse(query).document if self._documents else parse(query)
        except GraphQLError:
            return None
        if validate(self.schema, document):
            return None
        return shared_plan(self.schema, document, operation_name)

    async def open(
        self,
        ctx: RequestContext,
        owner: SharedOwner,
        operation_id: str,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
    ) -> SharedSubscription | None:
        """Start a shared subscription, or None when Strawberry should run it (module doc)."""
        variables = variables or {}
        planned = self.plan(query, operation_name, variables)
        if planned is None or ctx.hub is None:
            return None
        plan, cost = planned
        viewer = await ctx.viewer()
        if viewer is None:
            return None
        try:
            if ctx.subscriptions is not None:
                ctx.subscriptions.check(CONNECTION)
            await charge_cost(ctx, UNCOSTED_OPERATION if cost is None else cost)
        except RateLimited:
            return None  # Strawberry's run refuses it, with its error
        self.services, self._live, self.hub_queue_size = ctx.services, ctx.live, ctx.hub.queue_size
        channels = frozenset(await live.feed_channels(ctx.services, viewer.user_id))
        presence = live.feed_presence(ctx)
        await presence.acquire(viewer.user_id)
        try:
            if ctx.subscriptions is not None:
                ctx.subscriptions.acquire(CONNECTION)
        except RateLimited:
            presence.release(viewer.user_id)
            return None
        key = (query, operation_name or "", orjson.dumps(variables, option=orjson.OPT_SORT_KEYS).decode())
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(self, key, plan, variables)
        group.members += 1
        subscriber = SharedSubscription(group, owner, ctx, operation_id, viewer.user_id, channels)
        ctx.hub.attach(subscriber)
        return subscriber

    def release(self, group: _Group, subscriber: SharedSubscription) -> None:
        """``subscriber`` ended: give back its places."""
        ctx = subscriber.ctx
        if ctx.hub is not None:
            ctx.hub.remove(subscriber)
            live.feed_presence(ctx).release(subscriber.viewer_id)
        if ctx.subscriptions is not None:
            ctx.subscriptions.release(CONNECTION)
        group.members -= 1
        if group.members <= 0:
            self._groups.pop(group.key, None)
