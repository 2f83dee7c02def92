"""Starling's benchmark harness: ``python -m bench`` (``python3 run.py bench``).

Modules: ``data`` (the generated network), ``server`` (the server under test, a separate
process), ``floor`` (the same feed without GraphQL), ``load`` (wrk runs and their reports),
``visible`` (post-to-visible probes), ``probe`` (datastore round trips per page),
``report`` (RESULTS.md and the chart). Results are written to ``bench/results/``.
"""
