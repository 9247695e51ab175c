"""The faust agents of the real-time layer: they move data between Kafka and the pure
decision steps of ``streams.decisions`` and keep the decision states in faust tables."""

from streams.agents.app import AgentOptions, SpillwayAgents, make_app, run_worker

__all__ = ["AgentOptions", "SpillwayAgents", "make_app", "run_worker"]
