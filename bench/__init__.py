"""Starling's benchmark harness: ``python -m bench`` (``python3 run.py bench``).

Modules: ``data`` (the generated network), ``server`` (the server under test, a separate
process), ``floor`` (the same feed without GraphQL), ``ablations`` (the speed-ups switched
off again, for before/after figures), ``load`` (the server process, wrk runs, CPU
accounting), ``scenarios`` (feed vs floor, write, mixed), ``visible`` (post-to-visible
probes), ``probe`` (datastore round trips per page), ``report`` (RESULTS.md, the chart and
the README's headline), ``stats`` (shared helpers); ``fanout`` and ``subscribers`` are
harnesses of their own that ``python -m bench`` runs too. Results go to ``bench/results/``.
"""
