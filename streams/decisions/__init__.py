"""Pure decision logic of the real-time layer: no Kafka, faust or DuckDB in here.

Every stage is a ``step(state, inputs, ...) -> (state, outputs)`` function over a batch.
States are msgspec Structs, so a faust agent can keep them in a Table (JSON or msgpack,
with a changelog) and restore them after a crash or rebalance.

- ``power``: telemetry frames -> per-partition partial sums -> 1-second ``SitePower``.
- ``surplus``: ``SitePower`` -> ``SurplusEvent``.
- ``breakeven``: hashprice and breakeven power price (exact, Decimal).
- ``curtailment``: prices, dispatches, frequency, 4CP windows, ``SitePower`` ->
  ``MinerCommand`` + ``CurtailmentEvent``.
- ``alerts``: findings of the other stages -> deduplicated ``Alert``.
- ``fleet``: the deterministic miner roster shared with the simulator.
"""
