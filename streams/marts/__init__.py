"""Marts: the exactly-once Kafka -> DuckDB sink, publication for BI, read-only SQL.

- ``sink.run_sink(settings, stop_event, ...)``: consume, write rows + offsets in one
  transaction, publish periodically;
- ``publish.publish(con, marts_dir, ...)``: gated, immutable Parquet partitions plus
  ``views.duckdb``, including the derived marts (interval_energy, carbon_hourly,
  settlement via ``settle.settle_intervals``) and the ``mart_revisions`` audit trail of
  restated rows (``revisions.diff_published``);
- ``query.run_query(marts_dir, sql)``: read-only SQL over the published views;
- ``docs.render_markdown()``: every published table and column with units.
"""
