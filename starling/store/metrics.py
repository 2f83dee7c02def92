"""Every Prometheus series Starling exports (``/metrics``), defined in one place.

In ``store/`` because every layer records into it (the DataLoaders import only ``store``,
and the datastore counters live here too). Names follow Prometheus conventions: counters
end in ``_total``, durations are ``_seconds``; the two datastore series predate the rest
and keep their names, dashboards depend on them.

Label values are bounded: operation names come from clients, so only the first
``OPERATION_NAMES_MAX`` distinct names a process sees get their own series and the rest
count as ``other`` (``operation_label``).
"""

from __future__ import annotations

import re
import threading

from prometheus_client import Counter, Gauge, Histogram

# --- datastores (store.monitoring) -----------------------------------------------------
MONGO_COMMANDS = Counter("starling_mongo_commands_total", "MongoDB commands sent", ["command"])
REDIS_ROUND_TRIPS = Counter("starling_redis_round_trips_total", "Redis round trips")

# --- GraphQL operations ----------------------------------------------------------------
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
GRAPHQL_REQUESTS = Counter(
    "starling_graphql_requests_total",
    "GraphQL operations executed, by operation name and outcome (ok, error)",
    ["operation", "outcome"],
)
GRAPHQL_DURATION = Histogram(
    "starling_graphql_request_duration_seconds",
    "Time to execute a GraphQL operation (parse, validate, execute)",
    ["operation", "outcome"],
    buckets=LATENCY_BUCKETS,
)
GRAPHQL_ERRORS = Counter(
    "starling_graphql_errors_total", "GraphQL errors returned to clients, by extensions.code", ["code"]
)
RATE_LIMITED = Counter(
    "starling_rate_limited_total", "Requests refused by a rate limit (RATE_LIMITED), by limit", ["limit"]
)

# --- DataLoaders -------------------------------------------------------------------------
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
DATALOADER_BATCH_SIZE = Histogram(
    "starling_dataloader_batch_size", "Keys per DataLoader batch", ["loader"], buckets=BATCH_BUCKETS
)

# --- fan-out -----------------------------------------------------------------------------
FANOUT_JOBS = Counter("starling_fanout_jobs_total", "Fan-out jobs run (each one batch run of a tweet)")
FANOUT_DELIVERIES = Counter(
    "starling_fanout_deliveries_total", "Tweets written into followers' built home timelines"
)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
FANOUT_LAG = Histogram(
    "starling_fanout_lag_seconds",
    "From a tweet's creation (its snowflake ID) to its fan-out batch written to timelines",
    buckets=LAG_BUCKETS,
)

# --- queue and worker --------------------------------------------------------------------
QUEUE_DEPTH = Gauge("starling_queue_depth", "Jobs waiting in the arq queue (sampled on scrape)")
WORKER_JOBS = Counter(
    "starling_worker_jobs_total",
    "Background jobs finished, by job and outcome (ok, error, cancelled)",
    ["job", "outcome"],
)
WORKER_JOB_DURATION = Histogram(
    "starling_worker_job_duration_seconds", "Time a background job ran", ["job"], buckets=LATENCY_BUCKETS
)

# --- real time ---------------------------------------------------------------------------
ACTIVE_SUBSCRIPTIONS = Gauge(
    "starling_active_subscriptions", "GraphQL subscriptions running in this process (sampled on scrape)"
)
ACTIVE_WEBSOCKETS = Gauge("starling_active_websockets", "WebSocket connections open to this process")

OPERATION_NAMES_MAX = 200
ANONYMOUS = "anonymous"
OTHER = "other"
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")
_seen_operations: set[str] = set()
_seen_lock = threading.Lock()


def operation_label(name: str | None) -> str:
    """The ``operation`` label for a client's operation name (bounded cardinality)."""
    if not name:
        return ANONYMOUS
    if not _NAME.match(name):
        return OTHER
    with _seen_lock:
        if name in _seen_operations:
            return name
        if len(_seen_operations) < OPERATION_NAMES_MAX:
            _seen_operations.add(name)
            return name
    return OTHER
