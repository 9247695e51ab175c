"""``spillway run``: the main job.

Starts (or reuses) the broker, provisions the topics, streams simulated site telemetry
through the pipeline and prints what arrived, by topic, with what was rejected.
"""

from __future__ import annotations

import argparse
import time
import uuid

from infra import broker
from infra.provision import provision
from infra.topics import GRID_TOPICS, TELEMETRY_TOPICS
from streams.commands import Subparsers, add_parser, say
from streams.demo import demo_messages
from streams.io.kafka import TopicProducer, drain, make_consumer
from streams.io.validated import Validator
from streams.settings import get_settings


def register(sub: Subparsers) -> None:
    parser = add_parser(sub, "run", "run the pipeline end to end on simulated site telemetry")
    parser.add_argument("--seconds", type=int, default=30, help="seconds of telemetry (30)")
    parser.add_argument(
        "--no-broker",
        action="store_true",
        help="do not start the local broker; use KAFKA_BOOTSTRAP_SERVERS as it is",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if not args.no_broker and not broker.answers(settings.kafka_bootstrap_servers):
        broker.start(settings, progress=say)
    for line in provision(settings).describe():
        say(line)
    producer = TopicProducer(settings)
    started = time.time()
    readings = 0
    for topic, key, value, n in demo_messages(started - args.seconds, args.seconds):
        producer.send(topic, value, key=key)
        readings += n
    producer.flush()
    say(f"sent {producer.sent} messages ({readings} readings) in {time.time() - started:.2f} s")

    consumer = make_consumer(settings, f"spillway-run-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([producer.topic(t) for t in (*TELEMETRY_TOPICS, *GRID_TOPICS)])
    validator = Validator(settings, producer, "spillway-run")
    arrived: dict[str, int] = {}

    def handle(batch: list) -> None:  # type: ignore[type-arg]
        for topic, msg in validator.decode_batch(batch):
            n = len(getattr(msg, "power_w", None) or [0]) if topic in TELEMETRY_TOPICS else 1
            arrived[topic] = arrived.get(topic, 0) + n

    drain(consumer, handle, idle_s=3.0, max_s=120.0)
    consumer.close()
    producer.flush()
    print(f"{'topic':24} {'accepted':>9} {'rejected':>9} {'readings':>10}")
    for topic, counts in validator.tally.as_dict().items():
        row = f"{topic:24} {counts['accepted']:9} {counts['rejected']:9}"
        print(f"{row} {arrived.get(topic, 0):10}")
    return 0
