"""What token checks read from Redis: one hash per user (``Keys.auth_state``), one ``HMGET``
per check.

MongoDB holds the truth (``revoked_tokens``, and the user document's ``token_generation``,
which a password change raises); this hash mirrors it for the user's tokens:

- ``loaded``: the hash was filled from MongoDB. Without it (Redis lost its data, the key
  expired or was evicted, the user was never checked) the hash says nothing and the check
  asks MongoDB, then fills it: the first check after a loss restores the user's state.
  A per-user marker rather than one global flag: every check stays one command on one key
  (one Redis Cluster slot, no key every request reads), and a loss is repaired user by user
  as they come back instead of all at once.
- ``gen``: the user's token generation; tokens of an older generation are void.
- ``r:{token id}`` -> the token's expiry (unix seconds): that token was revoked (log-out).

Writes merge (``write``): fields are added, the generation only moves up, so a restore that
read MongoDB just before a log-out cannot undo it. The key expires a token lifetime after
its last write, when every token it could speak of has expired anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starling.store.keys import Keys
from starling.store.redis import DataPipeline, DataRedis, run_script

LOADED = "loaded"
GENERATION = "gen"
REVOKED_PREFIX = "r:"

# KEYS[1] a user's auth state; ARGV[1] TTL in seconds; ARGV[2] '1' to mark it loaded;
# ARGV[3] a generation ('' for none); ARGV[4..] (token id, expiry in unix seconds) pairs.
# Drops the revocations of tokens that have expired anyway, raises the generation (never
# lowers it), adds the revocations, marks it loaded, renews the TTL.
_WRITE = """
local now = tonumber(redis.call('TIME')[1])
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'r:' and tonumber(fields[i + 1]) <= now then
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
if ARGV[3] ~= '' and tonumber(ARGV[3]) > tonumber(redis.call('HGET', KEYS[1], 'gen') or '0') then
  redis.call('HSET', KEYS[1], 'gen', ARGV[3])
end
for i = 4, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) > now then redis.call('HSET', KEYS[1], 'r:' .. ARGV[i], ARGV[i + 1]) end
end
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'loaded', '1') end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
"""


@dataclass(frozen=True, slots=True)
class TokenState:
    """What the hash says about one token of a loaded user."""

    generation: int
    revoked: bool


def queue_read(pipe: DataPipeline, keys: Keys, user_id: int, token_id: str) -> None:
    """Queue, on ``pipe``, the read ``parse_read`` decodes."""
    pipe.hmget(keys.auth_state(user_id), [LOADED, GENERATION, REVOKED_PREFIX + token_id])


def parse_read(reply: Sequence[bytes | None]) -> TokenState | None:
    """The token's state, or None when the user's hash is not loaded (ask MongoDB)."""
    loaded, generation, revoked = reply
    if loaded is None:
        return None
    return TokenState(generation=int(generation or 0), revoked=revoked is not None)


async def write(
    redis: DataRedis,
    keys: Keys,
    user_id: int,
    *,
    ttl_seconds: int,
    generation: int | None = None,
    revoked: Sequence[tuple[str, int]] = (),
    loaded: bool = False,
) -> None:
    """Merge into the user's hash: ``revoked`` (token ID, expiry) pairs, a ``generation``,
    and with ``loaded`` the mark that it now holds everything MongoDB has."""
    args: list[str | int] = [ttl_seconds, "1" if loaded else "0", "" if generation is None else generation]
    for token_id, expires in revoked:
        args += [token_id, expires]
    await run_script(redis, _WRITE, [keys.auth_state(user_id)], args)
