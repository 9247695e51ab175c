"""A collector outage (``FaultConfig.outage_s``): one collector's frames are held for the
outage and sent, in order, when its link is back."""

from __future__ import annotations

import pytest

from streams.sim.faults import FaultConfig, Outgoing, TransportFaults

ASIC, GPU = "telemetry.asic.v1", "telemetry.gpu.v1"


def second(t: int) -> list[Outgoing]:
    v = str(t).encode()
    return [(ASIC, b"rack-1", v), (ASIC, b"rack-2", v), (GPU, b"node-1", v)]


def test_one_collector_is_cut_off_and_catches_up_in_order() -> None:
    faults = TransportFaults(FaultConfig(outage_start_s=10.0, outage_s=3.0), seed=0)
    sent = [faults.apply(second(t), float(t)) for t in range(8, 15)]
    assert sent[0] == second(8) and sent[1] == second(9)
    for during in sent[2:5]:  # 10, 11, 12: rack-1 (the first ASIC key seen) is silent
        assert [k for _, k, _ in during] == [b"rack-2", b"node-1"]
    # 13: the link is back; the buffered frames follow that second's own.
    assert sent[5] == [*second(13), *((ASIC, b"rack-1", str(t).encode()) for t in (10, 11, 12))]
    assert sent[6] == second(14)
    assert faults.delayed == 3


def test_frames_still_buffered_when_the_run_ends_are_flushed() -> None:
    faults = TransportFaults(FaultConfig(outage_start_s=0.0, outage_s=100.0), seed=0)
    faults.apply(second(0), 0.0)
    faults.apply(second(1), 1.0)
    assert faults.flush() == [(ASIC, b"rack-1", b"0"), (ASIC, b"rack-1", b"1")]


def test_a_negative_outage_is_refused() -> None:
    with pytest.raises(ValueError, match="outage_s"):
        FaultConfig(outage_s=-1.0).check()
