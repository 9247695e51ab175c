"""``spillway doctor``: what is wrong with this Spillway deployment, in plain words.

Checks, in order: the broker answers; every declared topic exists with its declared
partitions (``infra.provision.plan`` on what the cluster reports); the lag of Spillway's
consumer groups (names starting ``spillway``) on this namespace's topics; dead letters of
the last hour by source topic and kind; the last mart publication and its quality gate.
Exit code 0 when nothing failed, 1 otherwise; ``--json`` prints the same as data.

Each check is a pure ``judge_*`` function over what the probes read, so the wording and
the verdicts are tested without a broker; the ``probe_*`` functions only do I/O.
"""

from __future__ import annotations

import argparse
import json

from streams.commands import Subparsers, add_parser
from streams.doctor.judgements import WINDOW_S
from streams.doctor.probes import run_checks
from streams.settings import Settings, get_settings


def register(sub: Subparsers) -> None:
    parser = add_parser(
        sub, "doctor", "check the broker, topics, consumer lag, dead letters and marts"
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument(
        "--window",
        type=float,
        default=WINDOW_S,
        metavar="SECONDS",
        help="dead letters counted over this many seconds (default 3600)",
    )
    parser.set_defaults(func=_doctor)


def effective_settings(settings: Settings) -> Settings:
    """On the local secured broker with no SASL user configured, check as its admin.

    The admin's password is read from the broker's 0600 credentials file, never from the
    command line or the environment.
    """
    from infra import security

    local = f"127.0.0.1:{settings.broker_port}"
    if not settings.broker_secure or settings.kafka_sasl_username is not None:
        return settings
    if settings.kafka_bootstrap_servers != local:
        return settings
    try:
        return security.client_settings(settings, security.ADMIN)
    except security.SecurityError:
        return settings  # not started yet: the broker check says it does not answer


def _doctor(args: argparse.Namespace) -> int:
    from streams.pipeline.last_run import reading_settings

    settings = reading_settings(get_settings())
    report = run_checks(effective_settings(settings), window_s=args.window)
    if args.json:
        print(json.dumps(report.as_json(), indent=1, default=str))
    else:
        print("\n".join(report.lines()))
    return 0 if report.healthy else 1
