"""Settings: every knob Starling has, read once from the environment.

Each field maps to the upper-case environment variable of the same name
(``timeline_max`` <- ``TIMELINE_MAX``). The README lists them all.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

KIB = 1024
MIB = 1024 * KIB


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # --- datastores -------------------------------------------------------------------
    mongodb_url: str | None = Field(
        default=None, description="MongoDB URL; unset = the embedded in-process engine."
    )
    mongodb_db: str = Field(default="starling", description="MongoDB database name.")
    redis_url: str | None = Field(
        default=None, description="Redis URL; unset = a private redis-server started in-process."
    )
    redis_key_prefix: str = Field(
        default="st:", description="Prefix of every Redis key, so Starling can share a database."
    )
    queue_name: str = Field(default="starling:queue", description="arq queue name.")

    # --- public surface ---------------------------------------------------------------
    public_url: str = Field(default="http://127.0.0.1:8000", description="Base of share links (Tweet.url).")
    host: str = Field(default="127.0.0.1", description="Bind address of `starling dev/serve`.")
    port: int = Field(default=8000, description="Port of `starling dev/serve`.")

    # --- auth -------------------------------------------------------------------------
    token_secret: str | None = Field(
        default=None,
        description="HMAC secret for access tokens; required in production, generated in dev.",
    )
    token_ttl_seconds: int = Field(default=7 * 24 * 3600, description="Access token lifetime.")
    revocation_resync_seconds: int = Field(
        default=300,
        description="Revocations this recent are copied into Redis again by the repair cron "
        "(covers a log-out made while Redis was down).",
    )
    argon2_time_cost: int = Field(default=2, description="argon2id iterations.")
    argon2_memory_cost_kib: int = Field(default=19 * 1024, description="argon2id memory (KiB).")

    # --- timelines --------------------------------------------------------------------
    timeline_max: int = Field(default=800, description="Home timeline length kept in Redis.")
    author_tweets_max: int = Field(
        default=200, description="Recent tweets kept per author in Redis (merges, celebrities)."
    )
    celebrity_followers: int = Field(
        default=10_000, description="Authors with more followers are merged at read time."
    )
    timeline_ttl_seconds: int = Field(
        default=14 * 24 * 3600,
        description="Idle home timelines expire after this long and are rebuilt on next read.",
    )
    celebrity_set_ttl_seconds: int = Field(
        default=3600,
        description="Lifetime of a reader's cached set of followed celebrities (also invalidated "
        "by follows and threshold crossings).",
    )
    rebuild_lock_seconds: int = Field(default=30, description="How long a timeline rebuild holds its lock.")
    tweet_cache_ttl_seconds: int = Field(
        default=24 * 3600, description="Hydration cache lifetime of a tweet blob."
    )

    # --- fan-out ----------------------------------------------------------------------
    fanout_batch_size: int = Field(
        default=500,
        description="Followers read and written per Redis pipeline (tuned by bench/fanout.py).",
    )
    fanout_batches_per_job: int = Field(
        default=20, description="Batches one fan-out job handles before it enqueues the rest."
    )
    outbox_repair_after_seconds: int = Field(
        default=30,
        description="A tweet still marked for fan-out (or a deleted one for retracting its retweets) "
        "this long after is repaired.",
    )

    # --- engagement counters (store.counters) ---------------------------------------------
    counter_flush_seconds: int = Field(
        default=5,
        ge=1,
        le=60,
        description="How often the worker flushes like/comment/retweet count deltas to MongoDB "
        "(one bulk write per flush); best a divisor of 60.",
    )
    counter_ttl_seconds: int = Field(
        default=24 * 3600,
        description="A tweet's counts stay in Redis this long, then are recounted from MongoDB "
        "(which also repairs drift in the stored counts).",
    )
    counter_guard_seconds: int = Field(
        default=60,
        description="Longest a count change may take between its MongoDB and Redis steps; one that "
        "dies in between stops recounts of that tweet being cached for this long.",
    )
    counter_flush_lock_seconds: int = Field(
        default=300, description="Lock held by a counter flush; longer than any flush may take."
    )
    retweet_cascade_batch: int = Field(
        default=500,
        description="Retweets of a deleted tweet one job takes back before it enqueues the rest.",
    )

    # --- real time --------------------------------------------------------------------
    subscriber_queue_size: int = Field(
        default=256,
        ge=1,
        description="Live events buffered per subscription; one that falls further behind is dropped.",
    )
    ws_keep_alive_seconds: float = Field(
        default=15.0, gt=0, description="Interval of graphql-ws `ka` keep-alive messages."
    )
    event_hub_ping_seconds: float = Field(
        default=10.0,
        gt=0,
        description="An idle event hub pings Redis this often; no answer by the next ping = reconnect.",
    )
    event_hub_reconnect_seconds: float = Field(
        default=0.5,
        gt=0,
        description="First delay before the event hub reconnects to Redis (doubles, max 30 s).",
    )
    presence_ttl_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A homeFeed subscriber counts as online (fan-out publishes to it) this long after "
        "its process last renewed it; processes renew every third of it.",
    )

    # --- API limits -------------------------------------------------------------------
    page_size_max: int = Field(default=100, description="Largest `first` a connection accepts.")
    text_max: int = Field(default=280, description="Longest tweet or comment, in characters.")
    search_query_max: int = Field(
        default=100, ge=1, description="Longest `search` / `searchUsers` query, in characters."
    )
    trends_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a `trends` answer is cached in Redis; 0 computes it on every request.",
    )
    persisted_queries_max: int = Field(
        default=1000,
        ge=0,
        description="Automatic persisted queries (Apollo APQ) each API process remembers, least "
        "recently used dropped; 0 turns APQ off.",
    )
    persisted_queries_max_bytes: int = Field(
        default=8 * MIB, ge=0, description="What the persisted queries of one process may weigh together."
    )
    persisted_queries_entry_max_bytes: int = Field(
        default=64 * KIB, ge=0, description="A longer query runs but is not stored as a persisted query."
    )

    # --- query cost, before execution (schema.cost) ---------------------------------------
    query_max_depth: int = Field(
        default=10, ge=1, description="Deepest field nesting an operation may have (introspection aside)."
    )
    query_max_aliases: int = Field(
        default=30, ge=0, description="Most aliased fields an operation may have, fragments expanded."
    )
    query_max_tokens: int = Field(
        default=1000, ge=1, description="Most lexical tokens (comments included) a document may have."
    )
    query_max_cost: int = Field(
        default=5000,
        ge=1,
        description="Most objects an operation may return: connection page sizes multiplied down the "
        "tree, as GitHub's API counts (README, Limits and hostile input).",
    )
    query_cache_max_entries: int = Field(
        default=1024, ge=0, description="Parsed and validated documents each API process keeps."
    )
    query_cache_max_bytes: int = Field(
        default=32 * MIB, ge=0, description="What those documents may weigh together (estimated)."
    )
    query_cache_entry_max_bytes: int = Field(
        default=256 * KIB, ge=0, description="A document estimated heavier than this is not cached."
    )

    # --- HTTP and browsers ----------------------------------------------------------------
    request_body_max_bytes: int = Field(
        default=MIB,
        ge=1,
        description="Largest request body (and WebSocket message); a larger one is refused unread (413).",
    )
    cors_allowed_origins: str = Field(
        default="",
        description="Comma-separated origins browsers may call from (HTTP and WebSocket); a port may be "
        "`*` (`http://localhost:*`), `*` alone allows any. `starling dev` allows localhost by default.",
    )
    graphiql_enabled: bool = Field(
        default=False, description="Serve GraphiQL at GET /graphql (`starling dev`: on by default)."
    )
    introspection_enabled: bool = Field(
        default=False, description="Answer schema introspection (`starling dev`: on by default)."
    )

    # --- processes --------------------------------------------------------------------
    worker_id: int | None = Field(
        default=None,
        ge=0,
        le=1023,
        description="Snowflake worker number (0-1023); unset = allocated from Redis per process.",
    )
    run_worker_in_process: bool = Field(
        default=False, description="Run the arq worker inside the API process (set by `dev`)."
    )
    log_level: str = Field(default="INFO", description="Python logging level.")

    @property
    def embedded_mongo(self) -> bool:
        return self.mongodb_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
