"""``bench/RESULTS.md`` and ``bench/results/feed.png``, from the JSON results alone.

Every figure in the report comes from ``<out>/*.json`` as the scenarios wrote them; run
``python3 run.py bench report`` to redo the report without measuring again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.load import QUIET_CORES, QUIET_WAIT_SECONDS, ROOT

RESULTS = ROOT / "bench" / "results"
TARGET_RATIO = 0.35
TARGET_P99_MS = 100.0
TARGET_VISIBLE_P99_MS = 1000.0
# Server CPU per request of one variant varies this much between runs on this machine.
NOISE = 0.05

LADDER_STEPS = {
    "floor": "the floor: same reads and JSON, no GraphQL",
    "plain": "Strawberry as it comes (no caches, `json.dumps`, no prefetch)",
    "caches": "+ parser and validation caches",
    "orjson": "+ orjson responses",
    "prefetch": "+ page prefetch (production schema, graphql-core executing every field)",
    "feed": "+ compiled execution (production `/graphql`, query text)",
    "feed-apq": "+ automatic persisted queries (production, by hash)",
}


def _load(out: Path, name: str) -> dict[str, Any] | None:
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def cpu_ms(run: dict[str, Any]) -> float:
    """Server CPU time per request: what a request costs whatever else the machine did."""
    return run["usage"]["server_cores"] * 1000 / run["rps"] if run["rps"] else 0.0


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(row) for row in rows), ""]


def _run_cells(run: dict[str, Any]) -> list[Any]:
    latency, usage = run["latency_ms"], run["usage"]
    return [
        f"{run['rps']:.0f}",
        f"{latency['p50']:.1f}",
        f"{latency['p95']:.1f}" if "p95" in latency else "-",
        f"{latency['p99']:.1f}",
        run["errors"],
        f"{usage['server_cores']:.2f}",
        f"{cpu_ms(run):.2f}",
        f"{usage['redis_cores']:.2f}",
        f"{usage['wrk_cores']:.2f}",
        f"{usage['other_cores']:.2f}",
        f"{usage['server_rss_mib']:.0f}",
    ]


RUN_HEADER = [
    "req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "errors",
    "server cores",
    "server CPU ms/req",
    "redis cores",
    "wrk cores",
    "other cores",
    "server RSS MiB",
]


def chart(feed: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    runs = feed["runs"]
    modes = [
        mode for mode in ("floor", feed["headline"]["feed_mode"]) if any(r["mode"] == mode for r in runs)
    ]
    labels = {
        "floor": "floor (no GraphQL)",
        "feed": "homeFeed (GraphQL)",
        "feed-apq": "homeFeed (GraphQL, APQ)",
    }
    figure, (throughput, latency, ladder) = plt.subplots(1, 3, figsize=(15, 4.5))
    for mode in modes:
        points = sorted(
            (r["connections"], r["rps"], r["latency_ms"]["p99"]) for r in runs if r["mode"] == mode
        )
        xs = [p[0] for p in points]
        throughput.plot(xs, [p[1] for p in points], marker="o", label=labels[mode])
        latency.plot(xs, [p[2] for p in points], marker="o", label=labels[mode])
    throughput.set(title="Throughput", xlabel="connections", ylabel="requests/s", ylim=(0, None))
    latency.axhline(TARGET_P99_MS, color="grey", linestyle="--", linewidth=1, label="100 ms")
    latency.set(title="p99 latency", xlabel="connections", ylabel="ms", ylim=(0, None))
    for axis in (throughput, latency):
        xs = sorted({r["connections"] for r in runs})
        axis.set_xscale("log", base=2)
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xticks(xs, [str(x) for x in xs])
        axis.legend()
        axis.grid(alpha=0.3)
    steps = feed.get("ladder", [])
    ladder.barh(
        [r["mode"] for r in steps][::-1],
        [r["rps"] for r in steps][::-1],
        color=["tab:orange" if r["mode"] == "floor" else "tab:blue" for r in steps][::-1],
    )
    ladder.set(
        title=f"Ablation ladder at {feed['headline']['connections']} connections",
        xlabel="requests/s",
    )
    ladder.grid(alpha=0.3, axis="x")
    machine = feed["machine"]
    figure.suptitle(
        f"Starling homeFeed(first: 20) vs floor — {machine['cores']} cores, Python {machine['python']}, "
        f"{machine['date']}",
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def headline_cpu(feed: dict[str, Any]) -> tuple[float, float]:
    """Server CPU ms per request of the feed and of the floor at the headline's concurrency."""
    top = feed["headline"]
    at = {run["mode"]: run for run in feed["runs"] if run["connections"] == top["connections"]}
    return cpu_ms(at[top["feed_mode"]]), cpu_ms(at["floor"])


def _headline(
    feed: dict[str, Any] | None, mixed: dict[str, Any] | None, trips: dict[str, Any] | None
) -> list[str]:
    lines = ["## Headline", ""]
    if feed:
        top = feed["headline"]
        ok = top["ratio"] >= TARGET_RATIO and top["feed_p99_ms"] < TARGET_P99_MS
        feed_cpu, floor_cpu = headline_cpu(feed)
        lines.append(
            f"- **Server CPU per request: homeFeed {feed_cpu:.2f} ms, the floor {floor_cpu:.2f} ms "
            f"(floor/feed {floor_cpu / feed_cpu:.2f})** at {top['connections']} connections, the figure that "
            "holds whatever else the machine does; the throughput ratio below moves with the machine's "
            "other load."
        )
        lines += [
            f"- **feed/floor throughput ratio {top['ratio']:.2f}**, with the feed's **p99 at "
            f"{top['feed_p99_ms']:.1f} ms**, in the same run: homeFeed {top['feed_rps']:.0f} req/s at "
            f"{top['connections']} connections (p50 {top['feed_p50_ms']:.1f} ms), the floor "
            f"{top['floor_best_rps']:.0f} req/s at {top['floor_best_connections']} connections (p99 "
            f"{top['floor_best_p99_ms']:.1f} ms). Target: ratio ≥ {TARGET_RATIO} with p99 < "
            f"{TARGET_P99_MS:.0f} ms: **{_met(ok)}**.",
            "- Each side's best throughput is taken at the fewest connections within "
            f"{top['saturation_share']:.0%} of the highest it reached (the feed's highest: "
            f"{top['feed_highest_rps']:.0f} req/s at {top['feed_highest_connections']} connections): one "
            "process is saturated there, and more connections only queue. At the feed's concurrency the "
            f"floor served {top['floor_rps']:.0f} req/s (ratio {top['ratio_same_connections']:.2f}).",
        ]
    if mixed:
        seen = mixed["run"]["visibility"]
        ok = seen["p99_ms"] is not None and seen["p99_ms"] < TARGET_VISIBLE_P99_MS and not seen["misses"]
        lines.append(
            f"- Post-to-visible in the mixed scenario: p50 {seen['p50_ms']} ms, **p99 {seen['p99_ms']} ms** "
            f"({seen['probes']} probes, {seen['misses']} not seen within 5 s). Target p99 < 1 s: "
            f"**{_met(ok)}**."
        )
    if trips:
        first = trips["pages"][0]["feed"]
        sizes = ", ".join(str(row["first"]) for row in trips["pages"])
        constant = "the same for every size" if trips["constant"] else "NOT constant"
        merged = trips.get("celebrity_pages", [{}])[0].get("feed")
        also = (
            f" ({merged['mongo']} + {merged['redis']} for a reader who follows celebrities)" if merged else ""
        )
        lines.append(
            f"- Datastore round trips per warm homeFeed page: {first['mongo']} MongoDB + {first['redis']} "
            f"Redis{also} for first = {sizes}: **{constant}**."
        )
    return [*lines, ""]


def _setup(feed: dict[str, Any]) -> list[str]:
    machine, network = feed["machine"], feed["network"]
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    load = ", ".join(f"{name} {seconds} s" for name, seconds in network["load_seconds"].items())
    return [
        "## Setup",
        "",
        f"- Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, "
        f"{machine['os']}; Python {machine['python']}; {packages}; {machine['wrk']}; {machine['redis']}. "
        f"{machine['date']}" + (f", commit {machine['commit']}." if machine["commit"] else "."),
        f"- Network: {network['users']} users, {network['follows']} follows (Zipf popularity: most followed "
        f"{network['most_followed']}, median {network['median_followers']}), {network['tweets']} tweets, "
        f"{network['celebrities']} celebrities (more than {network['celebrity_followers']} followers, merged "
        f"at read time). Loaded in: {load}.",
        "- Server under test: one process (`bench/server.py`): the real app (`starling.cli.build_app`) on "
        "uvicorn with uvloop and httptools, the embedded MongoDB engine, a private redis-server, the arq "
        "worker in-process (the embedded engine lives in one process). Passwords use cheap argon2 "
        "settings (time cost 1, 1 MiB): signing up thousands of users is loading, not what is measured. "
        "The counter-repair cron recounts 50 users a run instead of 1,000: on the embedded engine its "
        "aggregations (a MongoDB server's work) run in the server under test.",
        "- Load: wrk (2 threads, `bench/wrk/starling.lua`) from outside the server process; every request "
        "is a different viewer (the tokens of all users in turn). Before each run the harness waits up to "
        f"{QUIET_WAIT_SECONDS:.0f} s for the rest of the machine to fall below {QUIET_CORES} cores; "
        "`other cores` shows what it still used (the machine may be shared).",
        "- The floor (`bench/floor.py`) answers the same JSON as the query from the same reads: the "
        "domain operation for the page and the same loaders for authors, counts and likes. The ratio is "
        "what GraphQL (Strawberry + graphql-core) leaves of the floor's throughput. `server CPU ms/req` "
        "(server CPU time over requests) is the cost of a request whatever else the machine was doing.",
        "",
    ]


def _feed_tables(feed: dict[str, Any]) -> list[str]:
    lines = [
        "## homeFeed vs floor",
        "",
        "`homeFeed(first: 20)`, fields: see `bench/floor.py` (`FEED_QUERY`).",
        "",
    ]
    rows = [[r["mode"], r["connections"], *_run_cells(r)] for r in feed["runs"]]
    lines += _table(["endpoint", "connections", *RUN_HEADER], rows)
    ratios = []
    for connections in sorted({r["connections"] for r in feed["runs"]}):
        at = {r["mode"]: r for r in feed["runs"] if r["connections"] == connections}
        floor_run, feed_run = at.get("floor"), at.get(feed["headline"]["feed_mode"])
        if floor_run and feed_run:
            ratios.append(
                [
                    connections,
                    f"{feed_run['rps'] / floor_run['rps']:.2f}",
                    f"{cpu_ms(floor_run) / cpu_ms(feed_run):.2f}" if cpu_ms(feed_run) else "-",
                ]
            )
    lines += ["Ratios per concurrency (throughput, and floor/feed server CPU per request):", ""]
    lines += _table(["connections", "throughput feed/floor", "CPU per request floor/feed"], ratios)
    return lines


def _ladder(feed: dict[str, Any]) -> list[str]:
    steps = feed.get("ladder") or []
    if not steps:
        return []
    lines = [
        "## Speed-ups: before and after, in the same run",
        "",
        f"Each row adds one lever to the row above (`bench/ablations.py` serves the variants from the same "
        f"process), at {feed['headline']['connections']} connections, {steps[0]['seconds']:.0f} s each.",
        "",
    ]
    rows, previous = [], None
    for run in steps:
        gain = (
            "" if previous is None or run["mode"] == "floor" else f"{run['rps'] / previous['rps'] - 1:+.0%}"
        )
        cpu_gain = (
            "" if previous is None or run["mode"] == "floor" else f"{cpu_ms(run) / cpu_ms(previous) - 1:+.0%}"
        )
        rows.append(
            [
                run["mode"],
                LADDER_STEPS.get(run["mode"], ""),
                f"{run['rps']:.0f}",
                gain,
                f"{run['latency_ms']['p50']:.1f}",
                f"{run['latency_ms']['p99']:.1f}",
                f"{cpu_ms(run):.2f}",
                cpu_gain,
                f"{run['usage']['other_cores']:.2f}",
            ]
        )
        previous = run if run["mode"] != "floor" else None
    lines += _table(
        ["variant", "adds", "req/s", "step", "p50 ms", "p99 ms", "server CPU ms/req", "step", "other cores"],
        rows,
    )
    lines += _graphql_layer(steps)
    lines += [
        "What each lever does, and what this run says of it (server CPU per request, the figure that "
        "holds whatever else the machine does; a step under 5% either way is within the noise: two "
        "runs of one variant differ by that much on this machine):",
        "",
        f"- **Parser and validation caches** (Strawberry's `ParserCache`, `ValidationCache`; "
        f"{_verdict(steps, 'caches')}): a query text seen before is neither parsed nor validated again.",
        f"- **orjson** (`StarlingGraphQL.encode_json`; {_verdict(steps, 'orjson')}): the response body "
        "in one C call. It was there before this work; kept, it costs nothing.",
        f"- **Page prefetch** (`schema.types.tweet_connection`, `schema.lookahead`; "
        f"{_verdict(steps, 'prefetch')}): profiles of the feed (`python3 run.py bench profile`) showed "
        "GraphQL's largest cost in the ~120 coroutines and asyncio tasks that a page's per-tweet loader "
        "fields (author, three counts, viewer state) became. The `homeFeed` resolver now looks ahead at the "
        "selected node fields and loads them for the whole page at once, through the same loaders (same "
        "batches, same round trips), and those fields answer without awaiting. A tweet outside a "
        "prefetched page loads as before.",
        f"- **Compiled execution** (`schema.plans`, `schema.execution`; {_verdict(steps, 'feed')}): with "
        "the page prefetched, what GraphQL still cost was graphql-core's generic work per field: a "
        "resolve info, Strawberry's resolver wrapper, type dispatch, scalar coercion, awaitable checks, "
        "some 200 times a page. Plain fields (attribute reads, resolvers marked `@sync_when_prefetched`, "
        "scalars, lists, objects of those) are now completed by a plan compiled once per selection of a "
        "cached document; anything a plan does not expect goes back to graphql-core, which produces the "
        "errors. The test suite runs with `GRAPHQL_EXECUTION_DIFFERENTIAL_CHECK`: every field a plan "
        "completes is completed by graphql-core too and compared.",
        f"- **Automatic persisted queries** (`starling/persisted_queries.py`, Apollo's protocol; "
        f"{_verdict(steps, 'feed-apq')}): clients send a hash instead of the query text and the server "
        "looks the text up instead of reading and hashing it. With the caches on, little server work is "
        "left to save; it is kept for clients: requests shrink from the query text to a hash and can be "
        "sent as cacheable GET requests.",
        "- Already in place before this work and not ablated here: uvloop and httptools (uvicorn picks them "
        "when installed), and the tweet blobs in Redis fetched with one `MGET` (a datastore-level choice "
        "the floor shares).",
        "- Several uvicorn processes (`starling serve --workers N`) multiply throughput on more cores with a "
        "real MongoDB; with the embedded engine processes share no data, so this report compares one "
        "process with one process.",
        "",
    ]
    return lines


def _graphql_layer(steps: list[dict[str, Any]]) -> list[str]:
    """What GraphQL adds to the floor's CPU per request, before and after compiled execution."""
    by_mode = {run["mode"]: run for run in steps}
    floor, before, after = (by_mode.get(mode) for mode in ("floor", "prefetch", "feed"))
    if floor is None or before is None or after is None or not cpu_ms(after):
        return []
    layer_before, layer_after = cpu_ms(before) - cpu_ms(floor), cpu_ms(after) - cpu_ms(floor)
    change = f" ({layer_after / layer_before - 1:+.0%})" if layer_before > 0 else ""
    return [
        f"The GraphQL layer (server CPU per request above the floor's): {layer_before:.2f} ms before "
        f"compiled execution (`prefetch`), {layer_after:.2f} ms with it (`feed`){change}; CPU per "
        f"request floor/feed {cpu_ms(floor) / cpu_ms(after):.2f}.",
        "",
    ]


def _verdict(steps: list[dict[str, Any]], mode: str) -> str:
    """How much less server CPU per request ``mode`` needs than the ladder step before it."""
    modes = [run["mode"] for run in steps]
    if mode not in modes or modes.index(mode) < 2:
        return "not measured in this run"
    run, before = steps[modes.index(mode)], steps[modes.index(mode) - 1]
    change = cpu_ms(run) / cpu_ms(before) - 1
    if change <= -NOISE:
        return f"{-change:.0%} less CPU per request"
    return f"{change:+.0%} CPU per request, within the noise"


def _visibility_section(title: str, result: dict[str, Any], text: str) -> list[str]:
    run = result["run"]
    seen = run["visibility"]
    lines = [f"## {title}", "", text, ""]
    rows = [["with probes", run["connections"], *_run_cells(run)]]
    capacity = result.get("capacity")
    if capacity:
        rows.insert(0, ["as fast as answered", capacity["connections"], *_run_cells(capacity)])
        rows[1][0] = f"paced at ~{result['target_rps']:.0f}/s"
    lines += _table(["run", "connections", *RUN_HEADER], rows)
    if capacity:
        lines += [
            f"As fast as answered, fan-out (in the same process) fell behind: {capacity['backlog_after']} "
            f"jobs were still due when the run ended, drained {capacity['drain_s']} s later.",
            "",
        ]
    sent = run.get("sent", {})
    if sent:
        lines += [
            f"Requests sent in the run with probes: "
            f"{', '.join(f'{name} {count}' for name, count in sent.items() if count)}.",
            "",
        ]
    lines += [
        f"Post-to-visible (a follower polls `homeFeed` every 20 ms until a probe's post shows): "
        f"p50 {seen['p50_ms']} ms, p99 {seen['p99_ms']} ms, max {seen['max_ms']} ms over "
        f"{seen['probes']} probes ({seen['misses']} not seen within 5 s, {seen['errors']} errors). "
        f"Fan-out jobs still due when the run ended: {run['backlog_after']} "
        f"(drained {run['drain_s']} s later).",
        "",
    ]
    return lines


def _flush_section(mixed: dict[str, Any]) -> list[str]:
    """The mixed load again, with the server's Redis flushed part way (``bench.flush``)."""
    flushed, before = mixed["flush"], mixed["run"]
    sampled = flushed["sampler"]
    lines = [
        "### The same load, with Redis flushed under it",
        "",
        f"wrk sends the same mixed load for {flushed['seconds']:.0f} s; {flushed['flush_at_s']} s in, the "
        "harness sends `FLUSHALL` to the server's Redis (every timeline, author list, cache, counter, rate "
        "limit and queued job gone, as when a Redis node comes back empty), while a sampler reads "
        "`homeFeed` as other users every 50 ms (`bench/flush.py`). Each reader's next page then rebuilds "
        "its timeline from MongoDB, a bounded number at once per process.",
        "",
        *_table(
            ["run", "connections", *RUN_HEADER],
            [
                ["without a flush (above)", before["connections"], *_run_cells(before)],
                ["Redis flushed", flushed["connections"], *_run_cells(flushed)],
            ],
        ),
        "Sampled reads, by second from the flush (negative: before it):",
        "",
        *_table(
            ["second", "reads", "p50 ms", "max ms", "errors"],
            [
                [row["second"], row["reads"], row["p50_ms"], row["max_ms"], row["errors"]]
                for row in sampled["per_second"]
            ],
        ),
    ]
    recovered = sampled["recovered_after_s"]
    back = (
        f"from second {recovered} on, every second's median was within {sampled['recovered_factor']}x "
        "of the median before"
        if recovered is not None
        else "the median had not come back within the run"
    )
    lines += [
        f"Sampled reads: median {sampled['p50_before_ms']} ms before the flush; after it p99 "
        f"{sampled['p99_after_ms']} ms, max {sampled['max_after_ms']} ms, {sampled['errors']} errors in "
        f"{sampled['reads']} reads; {back}. Fan-out jobs still due when the run ended: "
        f"{flushed['backlog_after']} (drained {flushed['drain_s']} s later).",
        "",
    ]
    return lines


def _round_trips(trips: dict[str, Any]) -> list[str]:
    readers = [("follows no celebrity", trips["pages"])]
    if "celebrity_pages" in trips:
        readers.append(("follows celebrities", trips["celebrity_pages"]))
    rows = [
        [
            reader,
            row["first"],
            row["feed"]["edges"],
            row["feed"]["mongo"],
            row["feed"]["redis"],
            row["floor"]["mongo"],
            row["floor"]["redis"],
            ", ".join(row["feed"]["mongo_commands"]),
        ]
        for reader, pages in readers
        for row in pages
    ]
    return [
        "## Datastore round trips per homeFeed page",
        "",
        "In-process (`bench/probe.py`): the benchmark query, after one warming read, counted by "
        "`store.monitoring.count_round_trips` (a MongoDB command, or a Redis round trip: a pipeline is one), "
        "for a reader who follows no celebrity and for one who does (whose page also merges the "
        "celebrities' author lists, read with the first round trip when the process remembers which "
        "ones the reader's last page merged, as after the warming read).",
        "",
        *_table(
            [
                "reader",
                "first",
                "tweets",
                "feed MongoDB",
                "feed Redis",
                "floor MongoDB",
                "floor Redis",
                "MongoDB commands",
            ],
            rows,
        ),
        f"Constant across page sizes: {trips['constant']}. "
        f"Feed and floor alike: {trips['feed_equals_floor']}.",
        "",
    ]


def _others(out: Path) -> list[str]:
    lines = []
    for name, title in (("fanout", "Fan-out"), ("subscribers", "Subscribers")):
        report = out / f"{name}.md"
        if report.exists():
            lines += [
                f"## {title}",
                "",
                f"See [`results/{name}.md`](results/{name}.md) (`bench/{name}.py`).",
                "",
            ]
    return lines


def render(out: Path) -> str:
    feed, write, mixed = _load(out, "feed"), _load(out, "write"), _load(out, "mixed")
    trips = _load(out, "round_trips")
    image = "results/feed.png" if out.resolve() == RESULTS.resolve() else "feed.png"
    lines = [
        "# Benchmark results",
        "",
        "Every figure here comes from one command, `python3 run.py bench` (`python -m bench`), which "
        "measures, writes `bench/results/*.json` and regenerates this file and the chart; "
        "`python3 run.py bench report` redoes only the report. Do not edit by hand.",
        "",
        *_headline(feed, mixed, trips),
    ]
    if feed:
        lines += [f"![homeFeed vs floor]({image})", "", *_setup(feed), *_feed_tables(feed), *_ladder(feed)]
    if write:
        lines += _visibility_section(
            "Write: postTweet under load",
            write,
            "wrk posts tweets as random users, first as fast as the server answers (the write path's "
            "capacity; fan-out jobs run in the same process and compete with the posts for it), then at "
            f"half that rate ({write.get('pause_ms', 0)} ms pause per connection between posts), a steady "
            "load, while probes measure post-to-visible latency.",
        )
    if mixed:
        lines += _visibility_section(
            "Mixed: 95% reads, 5% writes",
            mixed,
            "wrk sends 95% homeFeed (by persisted-query hash), 3% postTweet, 1% likeTweet and 1% follow, at "
            "the feed's best concurrency, while probes measure post-to-visible latency.",
        )
        if "flush" in mixed:
            lines += _flush_section(mixed)
    if trips:
        lines += _round_trips(trips)
    lines += _others(out)
    return "\n".join(lines).rstrip() + "\n"


README = ROOT / "README.md"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} (written by `python3 run.py bench`) -->", f"<!-- /bench:{name} -->"


def readme_headline(out: Path) -> str:
    """The README's summary of the results: a few figures, all from the JSON results."""
    feed, mixed, trips = _load(out, "feed"), _load(out, "mixed"), _load(out, "round_trips")
    if not feed:
        return ""
    top, machine = feed["headline"], feed["machine"]
    feed_cpu, floor_cpu = headline_cpu(feed)
    plain = next((run for run in feed.get("ladder", []) if run["mode"] == "plain"), None)
    lines = [
        f"Measured {machine['date']} on {machine['cores']} cores, one server process, each side at "
        "the concurrency where it reaches its best throughput (server CPU per request is the steadier "
        "figure: throughput moves with the machine's other load):",
        "",
        *_table(
            ["", "homeFeed (GraphQL)", "floor (no GraphQL)", "feed/floor"],
            [
                [
                    "requests/s (connections)",
                    f"{top['feed_rps']:.0f} ({top['connections']})",
                    f"{top['floor_best_rps']:.0f} ({top['floor_best_connections']})",
                    f"**{top['ratio']:.2f}**",
                ],
                ["p99", f"{top['feed_p99_ms']:.1f} ms", f"{top['floor_best_p99_ms']:.1f} ms", ""],
                [
                    f"server CPU per request ({top['connections']} connections)",
                    f"{feed_cpu:.2f} ms",
                    f"{floor_cpu:.2f} ms",
                    f"**{floor_cpu / feed_cpu:.2f}** (floor/feed)",
                ],
            ],
        ),
    ]
    if plain:
        floor_run = feed["ladder"][0]
        lines.append(
            f"- Before the speed-ups, plain Strawberry served the same page at {plain['rps']:.0f} requests/s "
            f"({plain['rps'] / floor_run['rps']:.2f} of the floor in the same run)."
        )
    layer = _graphql_layer(feed.get("ladder") or [])
    if layer:
        lines.append(f"- {layer[0]}")
    if mixed:
        seen = mixed["run"]["visibility"]
        lines.append(
            f"- Post-to-visible with 95% reads and 5% writes: p50 {seen['p50_ms']:.0f} ms, "
            f"p99 {seen['p99_ms']:.0f} ms."
        )
    if trips:
        first = trips["pages"][0]["feed"]
        merged = trips.get("celebrity_pages", [{}])[0].get("feed")
        also = f" ({merged['redis']} when the reader follows celebrities)" if merged else ""
        lines.append(
            f"- A warm feed page costs {first['mongo']} MongoDB and {first['redis']} Redis round trips{also} "
            f"whether it holds 10 or 100 tweets."
        )
    lines += _other_figures(out, mixed)
    return "\n".join(lines).rstrip() + "\n"


def _fanout_line(fanout: dict[str, Any]) -> str:
    chosen = next(row for row in fanout["write_path"] if row["batch_size"] == fanout["chosen_batch_size"])
    entries = fanout.get("timeline_entries")
    full = f"full {entries}-entry" if entries else "built"
    return (
        f"- Fan-out (`bench/results/fanout.md`): one author's tweet reached {fanout['followers']:,} {full} "
        f"timelines at {chosen['starling']['deliveries_per_s']:,} deliveries/s through the worker's Redis "
        f"write path (batches of {chosen['batch_size']}, one script per batch, live events only for the "
        f"{fanout['online_share']:.0%} online), {chosen['starling_vs_raw']:.2f}x a raw redis-py `ZADD` "
        "pipeline doing the same inserts in the same run."
    )


def _topologies_line(topologies: dict[str, Any]) -> str:
    low, high = topologies["cluster_over_standalone_range"]
    return (
        f"- Redis Cluster (`bench/results/topologies.md`): fanning out into full timelines of "
        f"{topologies['followers']:,} followers, a private 3-master cluster ran at "
        f"**{topologies['cluster_over_standalone']:.2f}x** one redis-server in the same run (median of "
        f"{topologies['rounds']} paired rounds, range {low}-{high})."
    )


def _encodings_line(encodings: dict[str, Any]) -> str:
    rows = {row["candidate"]: row for row in encodings["rows"]}
    chosen, before = rows["binary-listpack"], rows.get("binary-listpack-oldest-first")
    line = (
        f"- Timeline memory (`bench/results/encodings.md`): a full {encodings['entries']}-entry home "
        f"timeline takes **{chosen['memory_bytes']:,} bytes** of Redis (`MEMORY USAGE`: a listpack of "
        f"8-byte members, newest first); an insert costs Redis {chosen['insert_us_per_timeline']} µs per "
        "timeline"
    )
    if before:
        line += f", {before['insert_us_per_timeline']} µs with the same members oldest first"
    return line + "."


def _rebuild_line(rebuild: dict[str, Any]) -> str:
    largest = max(row["followees"] for row in rebuild["rows"])
    cases = {row["case"]: row for row in rebuild["rows"] if row["followees"] == largest}
    built, lost = cases["author lists built"], cases["author lists lost"]
    whole = cases["mongo $in (before)"]
    return (
        f"- Timeline rebuild (`bench/results/rebuild.md`, embedded engine): for a reader following "
        f"{largest:,} authors, {built['ms']} ms from the authors' lists in Redis ({lost['ms']} ms when "
        f"those are lost too), reading at most {built['read']:,} of them; one `$in` over all "
        f"{largest:,} took {whole['ms']} ms."
    )


def _flush_line(mixed: dict[str, Any]) -> str:
    flushed = mixed["flush"]
    sampled = flushed["sampler"]
    recovered = sampled["recovered_after_s"]
    back = (
        f"back within {sampled['recovered_factor']}x of the median before it after {recovered} s"
        if (recovered is not None)
        else "not yet back to the median before it when the run ended"
    )
    return (
        f"- Redis flushed under the mixed load (`bench/flush.py`): {flushed['errors']} failed requests "
        f"of {flushed['requests']:,}; sampled `homeFeed` reads p99 {sampled['p99_after_ms']} ms after the "
        f"flush ({sampled['p50_before_ms']} ms median before), {back}."
    )


def _subscribers_line(subscribers: dict[str, Any]) -> str:
    memory, sparse, burst = subscribers["memory"], subscribers["sparse"], subscribers["burst"]
    return (
        f"- Live subscribers (`bench/results/subscribers.md`): one API process held "
        f"{subscribers['setup']['subscribers']:,} `homeFeed` subscribers at {memory['per_subscriber_kib']} "
        f"KiB each; one event to each of them was delivered at {burst['deliveries_per_second']:,.0f} "
        f"deliveries/s, a single event in {sparse['p50_ms']} ms p50 / {sparse['p99_ms']} ms p99."
    )


OTHER_FIGURES = {
    "fanout": _fanout_line,
    "topologies": _topologies_line,
    "encodings": _encodings_line,
    "rebuild": _rebuild_line,
    "subscribers": _subscribers_line,
}


def _other_figures(out: Path, mixed: dict[str, Any] | None) -> list[str]:
    """A line per other harness whose results are there, all from their JSON."""
    lines = [line(result) for name, line in OTHER_FIGURES.items() if (result := _load(out, name))]
    if mixed and "flush" in mixed:
        lines.append(_flush_line(mixed))
    return lines


def readme_encodings(out: Path) -> str:
    """The README's table of timeline encodings (``bench.encodings``)."""
    encodings = _load(out, "encodings")
    if not encodings:
        return ""
    rows = [
        [
            f"**{row['candidate']} (chosen)**" if row["candidate"] == "binary-listpack" else row["candidate"],
            row["encoding"],
            f"{row['memory_bytes']:,} B",
            row["insert_us_per_timeline"],
            row["page_read_us"],
        ]
        for row in encodings["rows"]
    ]
    header = ["candidate", "encoding", "MEMORY USAGE", "insert (µs/timeline)", "page read (µs)"]
    return "\n".join(_table(header, rows)).rstrip() + "\n"


README_BLOCKS = {"headline": readme_headline, "encodings": readme_encodings}


def update_readme(out: Path) -> None:
    """Rewrite each ``bench:<name>`` block of the README from the results."""
    text = README.read_text()
    for name, render_block in README_BLOCKS.items():
        start, end = _markers(name)
        if start not in text or end not in text:
            print(f"report: README has no bench:{name} markers; not updated")
            continue
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{render_block(out)}{end}{tail}"
    README.write_text(text)


def main(out: Path, machine: dict[str, Any] | None = None) -> Path:
    feed = _load(out, "feed")
    if feed:
        chart(feed, out / "feed.png")
    default = out.resolve() == RESULTS.resolve()
    target = ROOT / "bench" / "RESULTS.md" if default else out / "RESULTS.md"
    target.write_text(render(out))
    if default:  # a --quick or --out run leaves the committed README alone
        update_readme(out)
    print(f"report: {target}")
    return target
