"""Operations are costed before they run (``schema.cost``, ``schema.limits``): the attacks
of issue 10 are refused with BAD_USER_INPUT and their figures, without a single datastore
round trip; accepted operations report their cost in ``extensions.cost``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from graphql import OperationDefinitionNode, get_introspection_query, parse
from strawberry.extensions import SchemaExtension

from bench import floor, scenarios, subscribers, visible
from bench.refusals import ATTACKS, aliased_feeds, connections
from starling.config import Settings
from starling.schema import StarlingSchema, schema
from starling.schema.cost import CEILING, fragments_of, operation_cost, operation_shape
from starling.schema.errors import ErrorCodes
from starling.schema.limits import Documents, OperationLimits, report_remaining, requested_cost
from starling.schema.mutation import Mutation
from starling.schema.query import Query
from starling.store.monitoring import count_round_trips
from tests.api import Account, Api
from tests.harness import started
from tests.realtime import LiveApp

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


# What each attack's refusal says (bench/refusals.py builds them and times the refusals).
REFUSALS = {
    "connections nested 6 levels": "nests fields 13 deep",
    "connections nested 7 levels": "nests fields 15 deep",
    "connections nested 3 levels": "1,020,202 objects",
    "six nested fragments": "nests fields 13 deep",
    "six wide fragments": "objects",
    "1,000 aliased homeFeed fields": "more than 1000 tokens",
    "1,000 homeFeed fields": "more than 1000 tokens",
}
ATTACK_CASES = {name: (query, REFUSALS[name]) for name, query in ATTACKS.items()}


@pytest.mark.parametrize(("query", "refusal"), ATTACK_CASES.values(), ids=ATTACK_CASES.keys())
async def test_attacks_are_refused_before_any_datastore_round_trip(
    api: Api, query: str, refusal: str
) -> None:
    viewer = await api.sign_up("attacker")
    with count_round_trips() as trips:
        body = await api.raw(query, token=viewer.token)
    assert trips.total == 0, trips.mongo_commands
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert refusal in error["message"], error["message"]


async def test_the_alias_and_depth_limits_say_their_figures(redis_url: str) -> None:
    async with started(redis_url, query_max_tokens=100_000) as harness:
        body = await harness.api.raw(aliased_feeds(1000))
        assert body["errors"][0]["message"] == (
            "The operation has 1,000 aliased fields (fragments expanded); at most 30 are allowed."
        )
        deep = '{ user(handle: "x") { ' + connections(5, first=1) + " } }"  # cheap, but deep
        body = await harness.api.raw(deep)
        assert body["errors"][0]["message"] == "The operation nests fields 11 deep; at most 10 are allowed."


async def test_an_accepted_operation_reports_its_cost(api: Api) -> None:
    reader = await api.sign_up("reader")
    query = "{ homeFeed(first: 5) { edges { node { id author { handle } } } pageInfo { hasNextPage } } }"
    body = await api.raw(query, token=reader.token)
    # homeFeed 1, pageInfo 1, and 5 each of edges, nodes and authors; what is left of the
    # viewer's query budget for the minute (RATE_LIMIT_QUERY_COST, 20,000) after paying it.
    cost = body["extensions"]["cost"]
    assert (cost["requested"], cost["maximum"]) == (17, 5000)
    assert 20_000 - 17 - 1 <= cost["remaining"] <= 20_000 - 17  # GCRA rounds down to whole units
    assert body["data"]["homeFeed"]["edges"] == []


def cost_of(api_body: dict[str, Any]) -> int:
    return api_body["extensions"]["cost"]["requested"]


async def test_the_cost_follows_the_variables_of_the_same_cached_document(api: Api) -> None:
    reader = await api.sign_up("reader")
    query = "query Feed($n: Int = 3) { homeFeed(first: $n) { nodes { id author { handle } } } }"
    costs = {}
    for label, variables in {"default": {}, "ten": {"n": 10}, "null": {"n": None}, "again": {}}.items():
        costs[label] = cost_of(await api.raw(query, variables, reader.token))
    # 1 + first x (node + author); null means the schema's default page (20).
    assert costs == {"default": 7, "ten": 21, "null": 41, "again": 7}
    over = await api.raw(query, {"n": 100}, reader.token)
    assert "data" in over and over["extensions"]["cost"]["requested"] == 201


async def test_a_page_size_over_the_maximum_costs_the_maximum(api: Api) -> None:
    """No resolver returns more than PAGE_SIZE_MAX items, so the estimate stops there (and the
    resolver refuses the argument with its own message)."""
    reader = await api.sign_up("reader")
    body = await api.raw("{ homeFeed(first: 100000) { nodes { id } } }", token=reader.token)
    assert cost_of(body) == 101
    assert "`first` must be between 1 and 100" in body["errors"][0]["message"]


async def test_a_subscription_over_the_cost_limit_is_refused_before_it_subscribes(live: LiveApp) -> None:
    viewer = await live.api.sign_up("viewer")
    costly = "subscription { homeFeed { author { " + connections(2) + " } } }"
    async with live.client(viewer.token) as session:
        with pytest.raises(TransportQueryError) as refused:
            async for _ in session.subscribe(GraphQLRequest(costly)):
                pass
    assert refused.value.errors is not None
    [error] = refused.value.errors
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "10,203 objects" in error["message"]
    assert live.subscriptions == 0


def operations(query: str) -> Iterator[tuple[str | None, Any]]:
    for definition in parse(query).definitions:
        if isinstance(definition, OperationDefinitionNode):
            yield (definition.name.value if definition.name else None), definition


def project_queries() -> dict[str, tuple[str, str | None, dict[str, Any]]]:
    """Every operation of the README and of the benchmarks: name -> (query, operation, variables)."""
    found: dict[str, tuple[str, str | None, dict[str, Any]]] = {}
    for number, block in enumerate(re.findall(r"```graphql\n(.*?)```", README, flags=re.S)):
        for name, _ in operations(block):
            found[f"README block {number} {name}"] = (block, name, {})
    for first in (10, 20, 50, 100):
        found[f"bench feed first={first}"] = (floor.FEED_QUERY, None, {"first": first})
    bench = {
        "bench post": scenarios.POST,
        "bench like": scenarios.LIKE,
        "bench follow": scenarios.FOLLOW,
        "bench subscribers": subscribers.QUERY,
        "bench visibility post": visible.POST,
        "bench visibility poll": visible.NEWEST,
    }
    found.update({name: (query, None, {}) for name, query in bench.items()})
    return found


PROJECT_QUERIES = project_queries()


@pytest.mark.parametrize(
    ("query", "operation", "variables"), PROJECT_QUERIES.values(), ids=PROJECT_QUERIES.keys()
)
def test_the_default_limits_pass_every_query_of_the_readme_and_the_benchmarks(
    query: str, operation: str | None, variables: dict[str, Any]
) -> None:
    documents = Documents.from_settings(Settings())
    errors, cost = documents.errors(documents.parse(query), schema._schema, operation, variables)
    assert errors == []
    assert cost is not None and cost <= Settings().query_max_cost


def test_graphiql_introspection_passes_the_default_limits_when_enabled() -> None:
    documents = Documents.from_settings(Settings(introspection_enabled=True))
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    errors, cost = documents.errors(documents.parse(query), schema._schema, None, {})
    assert errors == [] and cost == 0  # introspection reads the schema, not the datastores


def test_the_cost_walk_is_linear_in_the_document() -> None:
    """Twenty fragments, each spreading the next ten times: 10^20 spreads expanded. The walks
    work out each fragment once, so this returns at once with saturated figures (were it
    expanded, it would not return at all)."""
    levels = 20
    fragments = " ".join(
        f"fragment W{n} on Tweet {{ "
        + " ".join(f"a{k}: author {{ ...U{n} }}" for k in range(2))
        + " "
        + " ".join(f"...W{n + 1}" for _ in range(10))
        + " }"
        for n in range(levels)
    )
    users = " ".join(f"fragment U{n} on User {{ handle }}" for n in range(levels))
    leaf = f"fragment W{levels} on Tweet {{ id }}"
    query = f"query {{ homeFeed {{ nodes {{ ...W0 }} }} }} {fragments} {leaf} {users}"
    document = parse(query)
    [(_, operation)] = operations(query)
    fragment_map = fragments_of(document.definitions)
    shape = operation_shape(operation, fragment_map)
    assert shape.depth == 3 and shape.aliases == CEILING
    assert operation_cost(schema._schema, operation, fragment_map, {}, 100) == CEILING


class Charger(SchemaExtension):
    """What a rate limiter does with the hook: read the cost, say what is left."""

    seen: list[int | None] = []

    def on_execute(self) -> Iterator[None]:
        self.seen.append(requested_cost(self.execution_context))
        report_remaining(self.execution_context, 42)
        yield


async def test_a_rate_limiter_reads_the_cost_and_reports_what_is_left() -> None:
    documents = Documents.from_settings(Settings())
    limited = StarlingSchema(
        query=Query, mutation=Mutation, extensions=[ErrorCodes, lambda: OperationLimits(documents), Charger]
    )
    result = await limited.execute("{ __typename }")
    assert result.data == {"__typename": "Query"}
    assert Charger.seen == [0]
    assert result.extensions == {"cost": {"requested": 0, "maximum": 5000, "remaining": 42}}


async def test_refusals_over_get_make_no_round_trip_either(api: Api) -> None:
    account: Account = await api.sign_up("getter")
    query = '{ user(handle: "getter") { ' + connections(3) + " } }"
    with count_round_trips() as trips:
        response = await api.http.get(
            "/graphql", params={"query": query}, headers={"Authorization": f"Bearer {account.token}"}
        )
    assert trips.total == 0
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
