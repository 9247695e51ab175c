"""Marts: the exactly-once Kafka -> DuckDB sink, publication for BI, read-only SQL.

- ``sink.run_sink(settings, stop_event, ...)``: consume, write rows + offsets in one
  transaction, publish periodically;
- ``publish.publish(con, marts_dir, ...)``: gated, immutable Parquet partitions plus
  ``views.duckdb``;
- ``query.run_query(marts_dir, sql)``: read-only SQL over the published views;
- ``docs.render_markdown()``: every published table and column with units.
"""
