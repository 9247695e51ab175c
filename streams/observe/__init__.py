"""What operators look at: a bounded live view of the output topics (``state``), rendered
in the terminal (``terminal.render``, ``spillway watch``) and in a local web dashboard
(``web``, ``spillway dashboard``); Prometheus metrics (``metrics``) and JSON logs (``logs``).

Modules:
- ``ring``: bounded containers (time ring, keyed window, rate meter). Pure.
- ``state``: ``ObserveState`` and ``fold`` (messages in, view out), ``snapshot``. Pure.
- ``terminal``: ``render(state)`` -> rich renderable. Pure.
- ``marts``: reads the published Parquet marts (settlement, month to date).
- ``feed``: the read-only Kafka consumer that feeds the state.
- ``web``: the aiohttp dashboard (127.0.0.1 only), with /metrics.
- ``metrics``, ``logs``: Prometheus metrics and structured logging for every process.
"""
