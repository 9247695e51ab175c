"""The runtime around faust: the repairs Spillway makes to faust-streaming's consumer.

Everything here reaches into faust's or aiokafka's private internals, pinned to the exact
versions in ``pyproject.toml`` and guarded by ``tests/faust_runtime/test_private_hooks.py``.
Each module answers one faust behaviour; ``docs/faust-runtime.md`` names the upstream issue
and what to delete when upstream fixes it. The pure stage logic stays in ``streams.agents``
(stage 1 and 2) and ``streams.decisions``.
"""
