"""Spillway infrastructure: the local Kafka broker, topic declarations and provisioning."""
