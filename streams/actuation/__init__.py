"""Commands that reach real machines: firmware APIs, outlets and GPU power caps.

``delivery`` is the pure state machine (``step(state, inputs) -> (state, outputs)``);
``firmware``, ``pdu`` and ``gpu_caps`` are thin I/O; ``runner`` wires them to Kafka.
See docs/actuation.md.
"""
