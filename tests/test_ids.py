"""Snowflake IDs: unique, time-ordered, and safe to hand to clients as strings."""

from __future__ import annotations

import threading

import pytest

from starling.store.ids import (
    EPOCH_MS,
    MAX_ID,
    SnowflakeGenerator,
    from_member,
    id_timestamp_ms,
    lowest_id_at,
    parse_id,
    to_member,
)


def test_ids_increase_and_carry_their_time() -> None:
    now = [1_800_000_000.0]
    generator = SnowflakeGenerator(worker_id=5, clock=lambda: now[0])
    first = generator.next_id()
    second = generator.next_id()
    now[0] += 0.002
    third = generator.next_id()
    assert first < second < third
    assert id_timestamp_ms(first) == 1_800_000_000_000
    assert id_timestamp_ms(third) == 1_800_000_000_002
    assert lowest_id_at(1_800_000_000_000) <= first < lowest_id_at(1_800_000_000_001)
    assert first < MAX_ID


def test_sequence_overflow_waits_for_the_next_millisecond() -> None:
    ticks = iter([1.0] * 5000 + [1.001] * 10)
    generator = SnowflakeGenerator(worker_id=0, clock=lambda: next(ticks) + EPOCH_MS / 1000)
    ids = [generator.next_id() for _ in range(4097)]
    assert len(set(ids)) == 4097
    assert ids == sorted(ids)
    assert id_timestamp_ms(ids[-1]) > id_timestamp_ms(ids[0])


def test_clock_going_backwards_never_reorders() -> None:
    times = iter([100.0, 99.0, 99.0, 101.0])
    generator = SnowflakeGenerator(worker_id=1, clock=lambda: next(times) + EPOCH_MS / 1000)
    ids = [generator.next_id() for _ in range(4)]
    assert ids == sorted(ids) and len(set(ids)) == 4


def test_unique_across_threads_and_workers() -> None:
    generators = [SnowflakeGenerator(worker_id=n) for n in (0, 1)]
    results: list[int] = []
    lock = threading.Lock()

    def mint(generator: SnowflakeGenerator) -> None:
        batch = [generator.next_id() for _ in range(2000)]
        with lock:
            results.extend(batch)

    threads = [threading.Thread(target=mint, args=(g,)) for g in generators for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == len(results) == 8000


def test_worker_id_range() -> None:
    with pytest.raises(ValueError):
        SnowflakeGenerator(worker_id=1024)


@pytest.mark.parametrize("text", ["", "abc", "-1", "0", "1.5", " ", "9" * 20, str(MAX_ID + 1)])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_id(text)


def test_parse_and_member_round_trip() -> None:
    assert parse_id(" 42 ") == 42
    assert parse_id(str(MAX_ID)) == MAX_ID
    members = [to_member(n) for n in (5, 40, 300, MAX_ID)]
    assert members == sorted(members, reverse=True)  # byte order is newest (highest) first
    assert all(len(m) == 8 for m in members)
    assert [from_member(m) for m in members] == [5, 40, 300, MAX_ID]
