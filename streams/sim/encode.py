"""Encode a ``Step`` into Kafka messages, fast.

A frame's constant columns (ids, GPU indices, models) are encoded once per rack; each
second only the changing columns are encoded (one msgspec call per frame) and spliced in
front of the constant part. The bytes are a valid JSON object of the frame's contract,
field order aside (``tests/sim`` decodes them with the topic's contract).

``encoding="packed"`` sends the same frames in the packed encoding (``schemas.packed``).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.packed import pack
from streams.sim.faults import Outgoing
from streams.sim.model import SiteModel, Step, polled

GPU_TOPIC = "telemetry.gpu.v1"
ASIC_TOPIC = "telemetry.asic.v1"
METER_TOPIC = "telemetry.meter.v1"
Encoding = Literal["json", "packed"]
ENCODINGS: tuple[Encoding, ...] = ("json", "packed")


class _GpuVar(msgspec.Struct, omit_defaults=True):
    ts_s: float
    seq: int
    power_w: msgspec.Raw
    energy_mj: list[int | None]
    util_pct: list[float | None]
    temp_c: list[float | None]
    sm_clock_mhz: list[int | None]
    throttle_reasons: list[int | None]
    # Counter steps since the rack's previous poll; left out (absent) where it has none.
    energy_step_mj: list[int | None] | None = None
    step_s: list[float | None] | None = None
    step_power_w: msgspec.Raw | list[float | None] | None = None


class _AsicVar(msgspec.Struct):
    ts_s: float
    seq: int
    hashrate_ths: list[float]
    power_w: list[float | None]
    temp_c: list[float | None]
    fan_rpm: list[int | None]
    state: list[str]
    power_limit_w: list[float | None]


def _const(enc: msgspec.json.Encoder, fields: dict[str, object]) -> bytes:
    """``,"k":v,...}``: the tail that closes a frame after its changing fields."""
    body = enc.encode(fields)
    return b"," + body[1:]


class FrameEncoder:
    def __init__(self, model: SiteModel, encoding: Encoding = "json") -> None:
        self.encoding = encoding
        enc = self._enc = msgspec.json.Encoder()
        site = model.site.site_id
        self._gpu_tail = [
            _const(
                enc,
                {
                    "v": 1,
                    "site_id": site,
                    "source_id": r.source_id,
                    "node_id": r.node_ids,
                    "gpu_index": r.gpu_index,
                    "power_limit_w": r.power_limit_w,
                },
            )
            for r in model.gpu_racks
        ]
        self._gpu_keys = [r.source_id.encode() for r in model.gpu_racks]
        self._asic_tail = [
            _const(
                enc,
                {
                    "v": 1,
                    "site_id": site,
                    "source_id": r.source_id,
                    "miner_id": r.miner_ids,
                    "model": r.models,
                    "error": r.error,
                },
            )
            for r in model.asic_racks
        ]
        self._asic_keys = [r.source_id.encode() for r in model.asic_racks]
        self._meter_key = model.sim.meter_source_id.encode()
        # Per GPU rack: its last poll's number and encoded power_w, the next poll's
        # step_power_w (encoding floats is most of the cost of a frame).
        self._gpu_power: list[tuple[int, bytes] | None] = [None] * len(model.gpu_racks)
        self.bytes_out = 0

    def encode(self, step: Step) -> list[Outgoing]:
        if self.encoding == "packed":
            return self._encode_packed(step)
        enc = self._enc
        out: list[Outgoing] = []
        g = step.gpu
        steps = step.gpu_steps
        cache = self._gpu_power
        gpu_racks = enumerate(
            zip(step.gpu_racks, step.gpu_ts, self._gpu_tail, self._gpu_keys, strict=True)
        )
        for i, (r, ts, tail, key) in polled(gpu_racks, step.gpu_due):
            a, b = r.start, r.stop
            power = enc.encode(g.power_w[a:b])
            energy_step: list[int | None] | None = None
            step_s: list[float | None] | None = None
            step_power: msgspec.Raw | list[float | None] | None = None
            if steps is not None and steps.rack_has[i]:
                held = cache[i]
                if (
                    steps.rack_full[i]
                    and held is not None
                    and steps.prev_poll is not None
                    and held[0] == steps.prev_poll[i]
                ):
                    energy_step = steps.energy_mj[a:b].tolist()
                    step_s = steps.span(i, b - a)
                    step_power = msgspec.Raw(held[1])
                else:
                    energy_step, step_s, step_power = steps.columns(i, a, b)
            if steps is not None:
                cache[i] = (steps.poll_id, power)
            head = enc.encode(
                _GpuVar(
                    ts,
                    step.seq,
                    msgspec.Raw(power),
                    g.energy_mj[a:b],
                    g.util_pct[a:b],
                    g.temp_c[a:b],
                    g.sm_clock_mhz[a:b],
                    g.throttle_reasons[a:b],
                    energy_step,
                    step_s,
                    step_power,
                )
            )
            out.append((GPU_TOPIC, key, head[:-1] + tail))
        s = step.asic
        asic_racks = zip(
            step.asic_racks, step.asic_ts, self._asic_tail, self._asic_keys, strict=True
        )
        for ar, ts, tail, key in polled(asic_racks, step.asic_due):
            a, b = ar.start, ar.stop
            head = enc.encode(
                _AsicVar(
                    ts,
                    step.seq,
                    s.hashrate_ths[a:b],
                    s.power_w[a:b],
                    s.temp_c[a:b],
                    s.fan_rpm[a:b],
                    s.state[a:b],
                    s.power_limit_w[a:b],
                )
            )
            out.append((ASIC_TOPIC, key, head[:-1] + tail))
        if step.meter_due:
            out.append((METER_TOPIC, self._meter_key, enc.encode(step.meter)))
        return out

    def _encode_packed(self, step: Step) -> list[Outgoing]:
        out: list[Outgoing] = [
            (GPU_TOPIC, key, pack(f))
            for f, key in zip(step.gpu_frames(), polled(self._gpu_keys, step.gpu_due), strict=True)
        ]
        out.extend(
            (ASIC_TOPIC, key, pack(f))
            for f, key in zip(
                step.asic_frames(), polled(self._asic_keys, step.asic_due), strict=True
            )
        )
        if step.meter_due:
            out.append((METER_TOPIC, self._meter_key, pack(step.meter)))
        return out
