"""`make bench`: Freigabe's benchmark (docs in README.md, "Benchmark").

A program of its own: it starts `idp serve` (SQLite + embedded Redis, and
PostgreSQL + redis-server), the trivial-Flask ceiling C, drives them with `wrk`
and a Python flow driver in several processes, and prints and writes the
results. Nothing in `idp/` imports it.
"""
