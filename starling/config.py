"""Settings: every knob Starling has, read once from the environment and validated then.

Each field maps to the upper-case environment variable of the same name
(``timeline_max`` <- ``TIMELINE_MAX``). The README lists them all.

**Setting or constant.** A value is a setting when a deployment may need a different one
and every value its constraints admit keeps Starling correct: addresses, secrets,
capacities, lifetimes, batch sizes, limits. A value is a module constant, named and
commented where it is used, when it belongs to a protocol or a data layout (Redis key
formats, snowflake bit widths, Lua chunk sizes, the GraphQL contract's defaults) or is
tuning no deployment has a reason to change; changing one is a code change, with tests.

**Validation.** ``load_settings`` is the one entry point: every field is checked against
its constraints and the URLs against their schemes when the process starts, and a bad
value is a ``ConfigError`` naming the environment variable, never an ``assert`` or a
failure deep inside a request. What a role needs on top (``serve`` and ``worker`` need
real datastores and a token secret) is ``Settings.require``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
URL_SCHEMES = {
    "mongodb_url": ("mongodb", "mongodb+srv"),
    "redis_url": ("redis", "rediss", "unix"),
    "queue_redis_url": ("redis", "rediss", "unix"),
    "public_url": ("http", "https"),
    "otlp_endpoint": ("http", "https"),
    "media_s3_endpoint": ("http", "https"),
    "media_public_base_url": ("http", "https"),
}


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable and what it needs."""


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
        default=None,
        description="The data Redis (timelines, caches, counters): one server or a Redis Cluster; "
        "unset = a private redis-server started in-process.",
    )
    redis_cluster: bool | None = Field(
        default=None,
        description="Whether REDIS_URL is a Redis Cluster; unset = detected at start-up (`INFO cluster`).",
    )
    queue_redis_url: str | None = Field(
        default=None,
        description="A standalone Redis for the arq queue, pub/sub, presence and locks; unset = "
        "REDIS_URL, which must then not be a cluster.",
    )
    redis_key_prefix: str = Field(
        default="st:",
        pattern=r"^[^{}]*$",
        description="Prefix of every Redis key, so Starling can share a database (no braces: "
        "they would make it every key's hash tag).",
    )
    queue_name: str = Field(default="starling:queue", description="arq queue name.")

    # --- public surface ---------------------------------------------------------------
    public_url: str = Field(default="http://127.0.0.1:8000", description="Base of share links (Tweet.url).")
    host: str = Field(default="127.0.0.1", description="Bind address of `starling dev/serve`.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port of `starling dev/serve`.")

    # --- auth -------------------------------------------------------------------------
    token_secret: str | None = Field(
        default=None,
        description="HMAC secret for access tokens; required in production, generated in dev.",
    )
    token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1, description="Access token lifetime.")
    revocation_resync_seconds: int = Field(
        default=300,
        ge=1,
        description="Revocations this recent are copied into Redis again by the repair cron "
        "(covers a log-out made while Redis was down).",
    )
    argon2_time_cost: int = Field(default=2, ge=1, description="argon2id iterations.")
    argon2_memory_cost_kib: int = Field(default=19 * 1024, ge=8, description="argon2id memory (KiB).")
    password_max_length: int = Field(
        default=1024,
        ge=8,
        description="Longest password accepted (sign-up, log-in, password change), in characters; "
        "a longer one is BAD_USER_INPUT before any hashing.",
    )

    # --- rate limits (resolvers.limits; each is an amount per window, GCRA) -----------------
    rate_limits_enabled: bool = Field(
        default=True,
        description="false turns off every rate limit and per-address WebSocket cap: for load "
        "tests only, never in production.",
    )
    rate_limit_login_per_handle: int = Field(
        default=10, ge=1, description="logIn (and changePassword) attempts per handle per login window."
    )
    rate_limit_login_per_address: int = Field(
        default=100, ge=1, description="logIn attempts per client address per login window."
    )
    rate_limit_login_window_seconds: float = Field(
        default=300.0, gt=0, description="Window of the logIn budgets."
    )
    rate_limit_sign_up_per_address: int = Field(
        default=100, ge=1, description="signUp calls per client address per sign-up window."
    )
    rate_limit_sign_up_window_seconds: float = Field(
        default=3600.0, gt=0, description="Window of the signUp budget."
    )
    rate_limit_writes_per_viewer: int = Field(
        default=120,
        ge=1,
        description="Writes (postTweet, retweet, undoRetweet, likeTweet, unlikeTweet, addComment, "
        "follow, unfollow) per viewer per writes window.",
    )
    rate_limit_writes_window_seconds: float = Field(
        default=60.0, gt=0, description="Window of the writes budget."
    )
    rate_limit_query_cost: int = Field(
        default=20_000,
        ge=1,
        description="Query cost a viewer (an anonymous client: its address) may spend per cost window; "
        "each operation costs 1 until the cost estimator prices it.",
    )
    rate_limit_query_cost_window_seconds: float = Field(
        default=60.0, gt=0, description="Window of the query cost budget."
    )
    trusted_proxy_hops: int = Field(
        default=0,
        ge=0,
        description="Proxies in front of Starling that append to X-Forwarded-For; the client address is "
        "the entry this many from the right. 0 = the TCP peer, X-Forwarded-For ignored.",
    )

    # --- timelines --------------------------------------------------------------------
    timeline_max: int = Field(default=800, ge=1, description="Home timeline length kept in Redis.")
    author_tweets_max: int = Field(
        default=200, ge=1, description="Recent tweets kept per author in Redis (merges, celebrities)."
    )
    celebrity_followers: int = Field(
        default=10_000, ge=0, description="Authors with more followers are merged at read time."
    )
    timeline_ttl_seconds: int = Field(
        default=14 * 24 * 3600,
        ge=1,
        description="Idle home timelines expire after this long and are rebuilt on next read.",
    )
    celebrity_set_ttl_seconds: int = Field(
        default=3600,
        ge=1,
        description="Lifetime of a reader's cached set of followed celebrities (also invalidated "
        "by follows and threshold crossings).",
    )
    relation_set_ttl_seconds: int = Field(
        default=3600,
        ge=1,
        description="Lifetime of a user's cached block and mute sets, rebuilt from MongoDB when "
        "they expire (edited in place by blocks and mutes meanwhile).",
    )
    rebuild_followees_max: int = Field(
        default=200,
        ge=1,
        description="Followees a timeline rebuild reads (the most recently active first).",
    )
    followed_celebrity_hints: int = Field(
        default=10_000,
        ge=0,
        description="Readers whose followed celebrities one process remembers from their last feed "
        "page, so their author lists are read with the next page's first round trip (0: off).",
    )
    rebuild_concurrency_max: int = Field(
        default=16,
        ge=1,
        description="Timeline rebuilds one process runs at once (a stampede after a Redis flush queues).",
    )
    rebuild_lock_seconds: int = Field(
        default=30, ge=1, description="How long a timeline rebuild holds its lock."
    )
    tweet_cache_ttl_seconds: int = Field(
        default=24 * 3600, ge=1, description="Hydration cache lifetime of a tweet blob."
    )
    user_cache_ttl_seconds: int = Field(
        default=3600,
        ge=1,
        description="Lifetime of a cached user profile blob (also deleted by every write to the user).",
    )
    viewer_engagement_window_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=1,
        description="A viewer's likes and retweets of tweets younger than this are answered from "
        "Redis; older tweets ask MongoDB.",
    )

    # --- fan-out ----------------------------------------------------------------------
    fanout_batch_size: int = Field(
        default=500,
        ge=1,
        description="Followers read and written per Redis pipeline (tuned by bench/fanout.py).",
    )
    fanout_batches_per_job: int = Field(
        default=20, ge=1, description="Batches one fan-out job handles before it enqueues the rest."
    )
    outbox_repair_after_seconds: int = Field(
        default=30,
        ge=1,
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
        ge=1,
        description="A tweet's counts stay in Redis this long, then are recounted from MongoDB "
        "(which also repairs drift in the stored counts).",
    )
    counter_guard_seconds: int = Field(
        default=60,
        ge=1,
        description="Longest a count change may take between its MongoDB and Redis steps; one that "
        "dies in between stops recounts of that tweet being cached for this long.",
    )
    counter_flush_lock_seconds: int = Field(
        default=300, ge=1, description="Lock held by a counter flush; longer than any flush may take."
    )
    user_recount_batch: int = Field(
        default=1000,
        ge=1,
        description="Users whose follower, following and tweet counts one run of the repair cron "
        "recounts (three queries a run); a full pass takes users / this runs, two a minute.",
    )
    user_recount_settle_seconds: int = Field(
        default=60,
        ge=1,
        description="The counter repair leaves a user alone while a follow, post or deletion of "
        "theirs is younger than this (its counter write may still be on its way).",
    )
    retweet_cascade_batch: int = Field(
        default=500,
        ge=1,
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
    ws_connection_init_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A WebSocket that sends no `connection_init` this long is closed (4408).",
    )
    ws_subscriptions_per_connection: int = Field(
        default=100, ge=1, description="Subscriptions one WebSocket may hold at once."
    )
    ws_sockets_per_address: int = Field(
        default=1000, ge=1, description="WebSockets one client address may hold open on one API process."
    )
    ws_anonymous_subscriptions_per_address: int = Field(
        default=1000,
        ge=1,
        description="Subscriptions without a viewer one client address may hold on one API process.",
    )
    ws_token_recheck_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often each API process re-checks the tokens of its open WebSockets (revocation "
        "events close them at once; this catches an event that was lost).",
    )
    live_event_concurrency: int = Field(
        default=16,
        ge=1,
        description="Live events one API process hydrates and sends at once; the others wait their "
        "turn, so a burst for many watchers never starves the requests.",
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
    page_size_max: int = Field(default=100, ge=1, description="Largest `first` a connection accepts.")
    notification_group_actors: int = Field(
        default=5,
        ge=1,
        description="How many of a notification group's latest actors it keeps (`sampleActors`).",
    )
    nodes_max: int = Field(default=100, ge=1, description="Most IDs one `nodes` query resolves.")
    text_max: int = Field(default=280, ge=1, description="Longest tweet or comment, in characters.")
    spoiler_text_max: int = Field(
        default=100, ge=1, description="Longest content warning (a tweet's spoilerText), in characters."
    )
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
    graphql_compiled_execution: bool = Field(
        default=True,
        description="Complete plain fields (attribute reads, prefetched values) through plans compiled "
        "per cached document instead of graphql-core's per-field machinery (README, Benchmarks).",
    )
    graphql_execution_differential_check: bool = Field(
        default=False,
        description="Complete every field a plan completes through graphql-core too and fail on any "
        "difference (for tests: it doubles that work).",
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

    # --- media ------------------------------------------------------------------------
    media_store: Literal["local", "s3"] = Field(
        default="local",
        description="Where media objects live: `local` (a folder, uploaded to and served by Starling) "
        "or `s3` (an S3-compatible bucket, uploaded to by presigned POST).",
    )
    media_local_dir: Path | None = Field(
        default=None, description="Folder of the `local` media store; unset = STARLING_DATA_DIR/media."
    )
    media_s3_endpoint: str | None = Field(
        default=None,
        description="S3-compatible endpoint URL (MinIO, R2...); unset = AWS S3. Credentials come "
        "from the usual AWS variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, profiles, roles).",
    )
    media_s3_bucket: str | None = Field(default=None, description="Bucket of the `s3` media store.")
    media_s3_region: str = Field(default="us-east-1", description="Region of the `s3` media bucket.")
    media_public_base_url: str | None = Field(
        default=None,
        description="Base URL media are read from (a CDN in front of the bucket); unset = "
        "PUBLIC_URL/media (`local`) or the bucket's own URL (`s3`).",
    )
    media_max_bytes: int = Field(default=8 * MIB, ge=1, description="Largest media upload, in bytes.")
    media_upload_seconds: int = Field(
        default=15 * 60, ge=1, description="How long an upload form (createMediaUpload) is accepted."
    )
    media_unattached_seconds: int = Field(
        default=24 * 3600,
        ge=1,
        description="Media not attached to a tweet this long after createMediaUpload are deleted "
        "(objects and record) by the worker's cron.",
    )
    media_thumbnail_px: int = Field(
        default=400, ge=16, description="Longest side of a media thumbnail, in pixels."
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
    log_level: LogLevel = Field(default="INFO", description="Python logging level.")
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="`json` (one object per line) or `text`; unset = JSON for `serve` and `worker`, "
        "text for `dev`.",
    )
    shutdown_timeout_seconds: int = Field(
        default=10,
        ge=1,
        description="On SIGTERM, how long `serve` lets in-flight requests finish (and the worker its "
        "jobs, which are re-queued past it) before cancelling them.",
    )

    # --- tracing (optional: the `tracing` extra) ----------------------------------------
    tracing_enabled: bool = Field(
        default=False,
        description="Export OpenTelemetry traces (requests, Redis, MongoDB, jobs) over OTLP/HTTP.",
    )
    tracing_service_name: str = Field(default="starling", description="`service.name` of exported traces.")
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces URL (e.g. `http://collector:4318/v1/traces`); unset = the "
        "exporter's own `OTEL_EXPORTER_OTLP_*` variables.",
    )
    tracing_field_spans: bool = Field(
        default=False, description="Also a span per resolved GraphQL field (costly: one per field and item)."
    )

    # --- development server (`starling dev`) ------------------------------------------
    starling_data_dir: Path = Field(
        default=Path(".starling"),
        description="Where `starling dev` keeps its embedded MongoDB snapshot and development "
        "TOKEN_SECRET across restarts (`--reset` empties it).",
    )
    dev_snapshot_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often `starling dev` saves the embedded MongoDB when it changed (also "
        "on shutdown); a crash loses at most the changes of this interval.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(*URL_SCHEMES, mode="after")
    @classmethod
    def _url_scheme(cls, value: str | None, info: Any) -> str | None:
        schemes = URL_SCHEMES[info.field_name]
        if value is not None and urlsplit(value).scheme not in schemes:
            raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
        return value.rstrip("/") if value is not None and info.field_name == "public_url" else value

    @property
    def embedded_mongo(self) -> bool:
        return self.mongodb_url is None

    def updated(self, **changes: Any) -> Settings:
        """These settings with ``changes``, validated like the environment's (``model_copy``
        would take them unchecked); a ``ConfigError`` says what is wrong."""
        return load_settings(**{**self.model_dump(), **changes})

    def require(self, *names: str, role: str) -> None:
        """Raise ``ConfigError`` unless every setting in ``names`` is set (``role``: what
        needs them, for the message)."""
        missing = [name.upper() for name in names if getattr(self, name) in (None, "")]
        if missing:
            raise ConfigError(f"{role} needs {', '.join(missing)} set (see the README's Configuration).")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (``overrides`` win), validated: a ``ConfigError``
    lists every invalid variable with what it must be."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']).upper()}: "
            + error["msg"].removeprefix("Value error, ")
            for error in exc.errors()
        ]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
