"""The parse/validation cache and the persisted-query store are bounded in bytes as well as
entries (``starling.lru``): a hundred 5 MiB queries grew a process by a gigabyte (issue 10)."""

from __future__ import annotations

import hashlib
import tracemalloc

import pytest
from graphql import parse
from strawberry.http import GraphQLRequestData

from starling.config import Settings
from starling.lru import BoundedLRU
from starling.persisted_queries import ENTRY_OVERHEAD_BYTES, PersistedQueries, PersistedQueryError
from starling.schema.limits import Documents, QueryLimits, document_weight
from tests.harness import started


def test_the_map_drops_least_recently_used_entries_past_its_byte_budget() -> None:
    cache: BoundedLRU[str, str] = BoundedLRU(max_entries=100, max_bytes=1000, entry_max_bytes=400)
    for key in "abc":
        assert cache.put(key, key, 300)
    assert cache.get("a") == "a"  # now the most recently used
    assert cache.put("d", "d", 300)  # 1200 > 1000: the least recently used goes
    assert (cache.get("b"), len(cache), cache.bytes) == (None, 3, 900)
    assert not cache.put("huge", "x", 401)  # heavier than one entry may be: not kept
    assert (cache.get("huge"), len(cache), cache.bytes) == (None, 3, 900)
    assert cache.put("a", "a2", 100)  # replacing an entry re-weighs it
    assert (cache.get("a"), cache.bytes) == ("a2", 700)


def test_the_map_drops_past_its_entry_budget_and_zero_keeps_nothing() -> None:
    cache: BoundedLRU[int, int] = BoundedLRU(max_entries=2, max_bytes=10**9, entry_max_bytes=10**9)
    for key in range(5):
        cache.put(key, key, 1)
    assert [cache.get(key) for key in range(5)] == [None, None, None, 3, 4]
    off: BoundedLRU[int, int] = BoundedLRU(max_entries=0, max_bytes=10**9, entry_max_bytes=10**9)
    assert not off.put(1, 1, 1) and len(off) == 0


def queries(count: int, size: int) -> list[str]:
    """Distinct valid queries of about ``size`` characters (aliased fields)."""
    fields = max(1, size // 20)
    return ["{ " + " ".join(f"q{n}x{k}: viewer {{ id }}" for k in range(fields)) + " }" for n in range(count)]


def test_documents_stay_within_their_byte_budget() -> None:
    limits = QueryLimits.from_settings(Settings(query_max_tokens=100_000))
    documents = Documents(limits, max_entries=1000, max_bytes=2_000_000, entry_max_bytes=500_000)
    for query in queries(50, 2000):  # about 500 tokens each: ~300 kB estimated
        documents.parse(query)
        assert documents.bytes <= 2_000_000
    assert 0 < len(documents) < 50
    one = queries(1, 2000)[0]
    assert document_weight(one, parse(one)) <= 500_000


def test_a_document_heavier_than_the_entry_limit_is_parsed_but_not_cached() -> None:
    limits = QueryLimits.from_settings(Settings(query_max_tokens=100_000))
    documents = Documents(limits, max_entries=1000, max_bytes=10_000_000, entry_max_bytes=100_000)
    small, big = queries(1, 100)[0], queries(2, 5000)[1]
    assert documents.parse(small) is documents.parse(small)  # cached: the same entry
    first, second = documents.parse(big), documents.parse(big)
    assert first is not second and first.document.definitions  # parsed each time, never kept
    assert len(documents) == 1


@pytest.mark.parametrize(
    "query",
    [
        "query Feed($first: Int) { homeFeed(first: $first) { edges { cursor node { id text } } } }",
        queries(1, 5000)[0],
        '{ user(handle: "' + "x" * 100_000 + '") { id } }',  # one long token: the text is what weighs
    ],
    ids=["feed", "many-fields", "long-string"],
)
def test_the_weight_estimate_is_close_to_what_the_document_takes(query: str) -> None:
    """The byte budget is only as good as the estimate: measured against tracemalloc, it
    stays within a factor of two of what parsing really allocates."""
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    document = parse(query)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    measured = sum(stat.size_diff for stat in after.compare_to(before, "filename")) + len(query)
    estimate = document_weight(query, document)
    assert measured / 2 <= estimate <= measured * 2, (estimate, measured)


def apq(query: str | None, text_for_hash: str) -> GraphQLRequestData:
    digest = hashlib.sha256(text_for_hash.encode()).hexdigest()
    extension = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    return GraphQLRequestData(query=query, variables=None, operation_name=None, extensions=extension)


def test_persisted_queries_stay_within_their_byte_budget() -> None:
    store = PersistedQueries(max_entries=1000, max_bytes=10_000, entry_max_bytes=5_000)
    texts = [f"{{ viewer {{ id }} }} # {n} " + "x" * 2900 for n in range(5)]
    for text in texts:
        store.resolve(apq(text, text))
    kept = []
    for text in texts:
        request = apq(None, text)
        try:
            store.resolve(request)
            kept.append(request.query == text)
        except PersistedQueryError as missing:
            assert missing.code == "PERSISTED_QUERY_NOT_FOUND"
            kept.append(False)
    per_entry = len(texts[0]) + ENTRY_OVERHEAD_BYTES
    assert kept == [False] * (5 - 10_000 // per_entry) + [True] * (10_000 // per_entry)


async def test_a_persisted_query_over_the_entry_limit_runs_but_is_not_stored(redis_url: str) -> None:
    long_query = "query Long { viewer { id } } # " + "x" * 2000
    async with started(redis_url, persisted_queries_entry_max_bytes=1000) as harness:
        http = harness.api.http
        body = {"query": long_query, "extensions": apq(long_query, long_query).extensions}
        ran = await http.post("/graphql", json=body)
        assert ran.json()["data"] == {"viewer": None}
        asked = await http.post("/graphql", json={"extensions": body["extensions"]})
        assert asked.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
