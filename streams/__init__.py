"""Spillway stream side: settings, Kafka I/O, decision logic and the faust agents."""
