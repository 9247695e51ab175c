"""Kafka I/O around the pure logic: producers, validated consumers, the dead-letter path."""
