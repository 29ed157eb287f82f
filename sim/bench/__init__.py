"""Benchmarks: ``make bench`` (``python -m sim.bench``) writes figures to ``build/bench/``.

Figures are measured here, never asserted in timed tests. Each benchmark writes one JSON file;
later hardware issues add theirs (``gft.json``, ``flow_engine.json``, ...).
"""
