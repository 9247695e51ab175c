"""``spillway actuate run|pause|resume|override``: deliver miner commands to real machines.

``run FLEET.toml`` consumes ``miners.commands.v1`` and sends each command through the
miner's own firmware API (or its PDU outlet), measuring compliance; ``--dry-run`` computes
everything and sends nothing. ``pause``/``resume`` stop and restart automatic curtailment of
a site; ``override`` sends an operator's command (it goes through a pause). All three are
audit events on ``actuation.audit.v1``. See docs/actuation.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import uuid

import msgspec

from streams.actuation.delivery import Policy
from streams.actuation.fleet import GpuSpec, load_actuation_fleet
from streams.actuation.gpu_caps import CapPolicy, GpuCapAgent
from streams.actuation.runner import AUDIT, Actuator, operator_request
from streams.commands import Subparsers, add_parser, say
from streams.io.kafka import TopicProducer
from streams.settings import get_settings


def register(sub: Subparsers) -> None:
    parser = add_parser(sub, "actuate", "send miner commands to real machines and prove delivery")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    run = add_parser(verbs, "run", "run the actuator against a fleet file")
    run.add_argument("fleet", help="actuation fleet TOML (streams/actuation/fleet.py)")
    run.add_argument("--dry-run", action="store_true", help="compute and log, send nothing")
    run.add_argument("--deadline", type=float, default=30.0, help="default deadline, s")
    run.add_argument("--rate", type=float, default=2000.0, help="commands sent per second")
    run.add_argument("--poll", type=float, default=1.0, help="seconds between power reads")
    run.add_argument("--timeout", type=float, default=5.0, help="per-device timeout, s")
    run.add_argument("--concurrency", type=int, default=512, help="devices talked to at once")
    run.add_argument("--group", default="spillway-actuator", help="consumer group")
    run.set_defaults(func=_run)

    for verb, text in (("pause", "pause automatic curtailment"), ("resume", "resume it")):
        p = add_parser(verbs, verb, f"{text} of a site (operator action, audited)")
        p.add_argument("site")
        p.add_argument("--operator", required=True, help="who asks (goes in the audit)")
        p.set_defaults(func=_pause, paused=verb == "pause")

    ov = add_parser(verbs, "override", "send an operator's command to some miners (audited)")
    ov.add_argument("site")
    ov.add_argument("--action", choices=("sleep", "wake", "set_power"), required=True)
    ov.add_argument("--miner", action="append", required=True, dest="miners")
    ov.add_argument("--watts", type=float, help="power limit for set_power")
    ov.add_argument("--operator", required=True)
    ov.set_defaults(func=_override)


def _run(args: argparse.Namespace) -> int:
    fleet = load_actuation_fleet(args.fleet)
    policy = Policy(
        deadline_s=args.deadline,
        sends_per_s=args.rate,
        burst=args.rate,
        ack_timeout_s=args.timeout,
        dry_run=args.dry_run,
    )
    actuator = Actuator(
        get_settings(),
        fleet,
        policy,
        group_id=args.group,
        poll_period_s=args.poll,
        concurrency=args.concurrency,
        timeout_s=args.timeout,
    )
    if fleet.gpu is not None:
        actuator.gpu_agents, actuator.cap_policy = _gpu_agents(fleet.gpu)
    mode = "DRY RUN: nothing will be sent" if args.dry_run else "live"
    say(f"actuator for {len(fleet.devices)} devices of site {fleet.site_id} ({mode})")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await actuator.run(stop)

    asyncio.run(main())
    say(f"stopped; outcomes {actuator.counts}")
    return 0


def _gpu_agents(spec: GpuSpec) -> tuple[dict[str, GpuCapAgent], CapPolicy]:
    """This host's GPUs through NVML (setting limits needs root)."""
    import pynvml

    pynvml.nvmlInit()
    say(f"GPU tier: node {spec.node}, cappable tenants {sorted(spec.policy.tenants)}")
    return {spec.node: GpuCapAgent(pynvml, spec.node, spec.tenants)}, spec.policy


def _publish(site: str, event: object) -> None:
    producer = TopicProducer(get_settings())
    producer.send(AUDIT, msgspec.json.encode(event), site.encode())
    producer.flush()


def _pause(args: argparse.Namespace) -> int:
    action = "request_pause" if args.paused else "request_resume"
    _publish(args.site, operator_request(args.site, args.operator, action, args.site))
    say(f"{action} for site {args.site} by {args.operator} sent")
    return 0


def _override(args: argparse.Namespace) -> int:
    if args.action == "set_power" and args.watts is None:
        raise SystemExit("--watts is required with --action set_power")
    cid = f"override-{uuid.uuid4().hex[:12]}"
    detail = json.dumps(
        {"action": args.action, "miner_ids": args.miners, "power_limit_w": args.watts}
    )
    _publish(args.site, operator_request(args.site, args.operator, "request_override", cid, detail))
    say(f"override {cid}: {args.action} {len(args.miners)} miners, by {args.operator}")
    print(cid)
    return 0
