"""Every group of keys a script, pipeline transaction or multi-key command uses together
hashes to one Redis Cluster slot (store.keys' hash tags), checked through the key builders
for many IDs; the Redis-facing suites run on a real cluster besides."""

from __future__ import annotations

import random

from redis.crc import key_slot

from starling.store.keys import TWEET_SHARDS, USER_SHARDS, Keys, tweet_shard, user_shard

KEYS = Keys("st:")
IDS = random.Random(7).sample(range(1, 2**63), 500)


def one_slot(*keys: str) -> bool:
    return len({key_slot(key.encode()) for key in keys}) == 1


def test_a_users_keys_share_a_slot() -> None:
    for user in IDS:
        timeline, authored = KEYS.home_timeline(user), KEYS.author_tweets(user)
        # The add script (a list and its rebuild lock), the invalidation (timeline and set).
        assert one_slot(timeline, Keys.rebuild_lock(timeline), KEYS.followed_celebrities(user)), user
        assert one_slot(authored, Keys.rebuild_lock(authored), timeline), user


def test_a_tweets_counter_keys_share_a_slot_with_its_shards_deltas() -> None:
    for tweet in IDS:
        shard = tweet_shard(tweet)
        # _END_CHANGE and _STORE_RECOUNT: counts, writers, the shard's deltas and flush state.
        assert one_slot(
            KEYS.counts(tweet),
            KEYS.count_writers(tweet),
            KEYS.count_deltas(shard),
            KEYS.count_flush_state(shard),
        ), tweet


def test_a_counter_shards_flush_keys_share_a_slot() -> None:
    for shard in range(TWEET_SHARDS):
        # _DRAIN (deltas renamed to batch) and _FINISH.
        assert one_slot(KEYS.count_deltas(shard), KEYS.count_batch(shard), KEYS.count_flush_state(shard))


def test_the_celebrity_set_and_its_epoch_share_a_slot() -> None:
    assert one_slot(KEYS.merged_authors(), KEYS.celebrity_epoch())  # _SET_MERGED


def test_the_timelines_of_one_user_shard_share_a_slot() -> None:
    """What lets a fan-out batch write a shard's followers with one script."""
    by_shard: dict[int, list[int]] = {}
    for user in IDS:
        by_shard.setdefault(user_shard(user), []).append(user)
    for users in by_shard.values():
        assert one_slot(*(KEYS.home_timeline(user) for user in users))


def test_shards_spread_over_slots() -> None:
    slots = {key_slot(KEYS.home_timeline(user).encode()) for user in range(1, 20_000)}
    assert len(slots) == USER_SHARDS  # each shard its own slot: a cluster can spread them
