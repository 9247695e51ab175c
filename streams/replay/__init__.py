"""Replay of recorded telemetry and grid data into Kafka (see SCENARIOS.md)."""
