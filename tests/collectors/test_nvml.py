"""NVML framing with a fake NVML module (pynvml's function names, no GPU needed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from schemas.telemetry import GpuFrame
from streams.collectors.nvml import NvmlReadError, NvmlSampler, NvmlUnavailable
from streams.collectors.nvml_probe import summarize

NOT_SUPPORTED = 3
GPU_IS_LOST = 15


class FakeNVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


@dataclass
class Gpu:
    power_mw: int | None = 350_000
    energy_mj: int | None = 1_000_000
    instant_mw: int | None = 412_345
    average_mw: int | None = 351_000
    util: int | None = 87
    temp: int | None = 61
    sm_clock: int | None = 1980
    limit_mw: int | None = 700_000
    events: int | None = 4
    lost: set[str] = field(default_factory=set)


def fake_nvml(
    gpus: list[Gpu], throttle_name: str = "nvmlDeviceGetCurrentClocksEventReasons"
) -> Any:
    def get(attr: str, fn: str) -> Callable[..., Any]:
        def call(h: Gpu, *args: Any) -> Any:
            if fn in h.lost:
                raise FakeNVMLError(GPU_IS_LOST)
            v = getattr(h, attr)
            if v is None:
                raise FakeNVMLError(NOT_SUPPORTED)
            return v

        return call

    def fields(h: Gpu, ids: list[int]) -> list[Any]:
        out = []
        for fid in ids:
            v = h.instant_mw if fid == 186 else h.average_mw
            out.append(
                SimpleNamespace(
                    nvmlReturn=0 if v is not None else NOT_SUPPORTED,
                    value=SimpleNamespace(uiVal=v or 0),
                )
            )
        return out

    util = get("util", "util")
    ns = SimpleNamespace(
        NVMLError=FakeNVMLError,
        NVML_ERROR_NOT_SUPPORTED=NOT_SUPPORTED,
        NVML_FI_DEV_POWER_INSTANT=186,
        NVML_FI_DEV_POWER_AVERAGE=185,
        NVML_TEMPERATURE_GPU=0,
        NVML_CLOCK_SM=1,
        nvmlDeviceGetCount=lambda: len(gpus),
        nvmlDeviceGetHandleByIndex=lambda i: gpus[i],
        nvmlDeviceGetName=lambda h: b"NVIDIA H100 80GB HBM3",
        nvmlDeviceGetPowerUsage=get("power_mw", "power"),
        nvmlDeviceGetTotalEnergyConsumption=get("energy_mj", "energy"),
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=util(h), memory=0),
        nvmlDeviceGetTemperature=get("temp", "temp"),
        nvmlDeviceGetClockInfo=get("sm_clock", "clock"),
        nvmlDeviceGetEnforcedPowerLimit=get("limit_mw", "limit"),
        nvmlDeviceGetFieldValues=fields,
    )
    setattr(ns, throttle_name, get("events", "events"))
    return ns


def test_full_featured_gpus_are_framed_in_si_units() -> None:
    s = NvmlSampler(fake_nvml([Gpu(), Gpu(power_mw=120_500, energy_mj=5)]), "node-7", "site")
    f = s.frame(s.read(), 1000.0, 3)
    assert isinstance(f, GpuFrame)
    assert (f.source_id, f.ts_s, f.seq, f.node_id, f.gpu_index) == (
        "node-7",
        1000.0,
        3,
        ["node-7", "node-7"],
        [0, 1],
    )
    assert f.power_w == [350.0, 120.5]  # mW -> W
    assert f.energy_mj == [1_000_000, 5]  # already mJ
    assert f.power_instant_w == [412.345, 412.345]
    assert f.power_limit_w == [700.0, 700.0]
    assert (f.util_pct, f.temp_c, f.sm_clock_mhz, f.throttle_reasons) == (
        [87.0, 87.0],
        [61.0, 61.0],
        [1980, 1980],
        [4, 4],
    )
    assert not s.errors


def test_unsupported_fields_are_none_and_not_errors() -> None:
    old = Gpu(energy_mj=None, instant_mw=None, util=None, events=None)
    s = NvmlSampler(fake_nvml([old, Gpu()]), "n", "s")
    f = s.frame(s.read(), 0.0, 0)
    assert f.energy_mj == [None, 1_000_000]
    assert f.power_instant_w == [None, 412.345]
    assert f.util_pct == [None, 87.0]
    assert f.throttle_reasons == [None, 4]
    assert not s.errors  # NOT_SUPPORTED is expected, not an error


def test_a_column_nobody_supports_is_left_out() -> None:
    s = NvmlSampler(fake_nvml([Gpu(instant_mw=None), Gpu(instant_mw=None)]), "n", "s")
    assert s.frame(s.read(), 0.0, 0).power_instant_w is None


def test_power_falls_back_to_the_average_field() -> None:
    s = NvmlSampler(fake_nvml([Gpu(power_mw=None)]), "n", "s")
    assert s.read()[0].power_w == 351.0


def test_no_power_at_all_is_an_error_naming_the_gpu() -> None:
    s = NvmlSampler(fake_nvml([Gpu(), Gpu(power_mw=None, average_mw=None)]), "node-3", "s")
    with pytest.raises(NvmlReadError, match="GPU 1 on node-3"):
        s.read()


def test_other_nvml_errors_on_optional_fields_are_counted() -> None:
    s = NvmlSampler(fake_nvml([Gpu(lost={"temp"})]), "n", "s")
    assert s.read()[0].temp_c is None
    assert sum(s.errors.values()) == 1 and "temperature" in next(iter(s.errors))


def test_older_pynvml_throttle_name() -> None:
    s = NvmlSampler(fake_nvml([Gpu()], "nvmlDeviceGetCurrentClocksThrottleReasons"), "n", "s")
    assert s.read()[0].throttle_reasons == 4


def test_no_gpu() -> None:
    with pytest.raises(NvmlUnavailable, match="no GPU"):
        NvmlSampler(fake_nvml([]), "n", "s")


@pytest.mark.parametrize(
    ("module", "match"),
    [
        (None, "nvidia-ml-py is not installed"),
        (
            SimpleNamespace(nvmlInit=lambda: (_ for _ in ()).throw(FakeNVMLError(12))),
            "NVML did not initialise .* driver",
        ),
    ],
)
def test_load_nvml_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, module: Any, match: str
) -> None:
    import sys

    from streams.collectors.nvml import load_nvml

    monkeypatch.setitem(sys.modules, "pynvml", module)
    with pytest.raises(NvmlUnavailable, match=match):
        load_nvml()


def test_probe_samples_and_summarises() -> None:
    from streams.collectors.nvml_probe import probe

    out = probe(fake_nvml([Gpu(), Gpu()]), seconds=0.1, period_s=0.05, node_id="n")
    assert len(out["frames"]) >= 2
    assert out["frames"][0]["power_w"] == [350.0, 350.0]
    assert out["summary"]["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    assert out["nvml_errors"] == {}


def _frame(ts: float, p: list[float], e: list[int | None]) -> GpuFrame:
    n = len(p)
    return GpuFrame(
        site_id="s",
        source_id="n",
        ts_s=ts,
        seq=0,
        node_id=["n"] * n,
        gpu_index=list(range(n)),
        power_w=p,
        energy_mj=e,
    )


def test_probe_summary_compares_counter_and_integrated_power() -> None:
    # GPU 0: 100 W then 300 W for 1 s each -> trapezoids 200 + 300 = 500 J; counter +500 J
    frames = [
        _frame(0.0, [100.0, 50.0], [0, None]),
        _frame(1.0, [300.0, 50.0], [250_000, None]),
        _frame(2.0, [300.0, 50.0], [500_000, None]),
    ]
    s = summarize(frames, ["H100", "H100"])
    g0, g1 = s["gpus"]
    assert s["frames"] == 3 and s["span_s"] == 2.0
    assert (g0["power_min_w"], g0["power_max_w"]) == (100.0, 300.0)
    assert g0["energy_integrated_j"] == 500.0 and g0["energy_counter_delta_j"] == 500.0
    assert g0["counter_over_integrated"] == 1.0
    assert g1["energy_counter_delta_j"] is None and g1["counter_over_integrated"] is None
    assert summarize([], []) == {"frames": 0, "gpus": []}


def test_first_frame_has_no_counter_steps() -> None:
    s = NvmlSampler(fake_nvml([Gpu(), Gpu()]), "n", "s")
    f = s.frame(s.read(), 100.0, 0)
    assert (f.energy_step_mj, f.step_s, f.step_power_w) == (None, None, None)


def test_second_frame_carries_the_counter_difference_since_the_first() -> None:
    gpus = [Gpu(power_mw=300_000, energy_mj=1_000_000), Gpu(power_mw=120_500, energy_mj=5)]
    s = NvmlSampler(fake_nvml(gpus), "node-7", "s")
    s.frame(s.read(), 100.0, 0)
    gpus[0].energy_mj, gpus[0].power_mw = 1_000_000 + 1_234_567, 650_000
    gpus[1].energy_mj = 5 + 241_000
    f = s.frame(s.read(), 102.0, 1)
    assert f.energy_step_mj == [1_234_567, 241_000]
    assert f.step_s == [2.0, 2.0]
    assert f.step_power_w == [300.0, 120.5]  # the power held since the previous poll
    assert f.power_w == [650.0, 120.5]
    # The third frame steps from the second.
    gpus[0].energy_mj += 650_000
    g = s.frame(s.read(), 103.0, 2)
    assert (g.energy_step_mj, g.step_s, g.step_power_w) == (
        [650_000, 0],
        [1.0, 1.0],
        [650.0, 120.5],
    )


def test_a_counter_that_went_back_or_is_missing_has_no_step() -> None:
    gpus = [Gpu(energy_mj=9_000_000), Gpu(energy_mj=1_000), Gpu(energy_mj=None)]
    s = NvmlSampler(fake_nvml(gpus), "n", "s")
    s.frame(s.read(), 10.0, 0)
    gpus[0].energy_mj = 500  # driver reload: the counter restarts
    gpus[1].energy_mj = 3_000
    f = s.frame(s.read(), 11.0, 1)
    assert f.energy_step_mj == [None, 2_000, None]
    assert f.step_s == [None, 1.0, None]
    assert f.step_power_w == [None, 350.0, None]
    gpus[0].energy_mj = 700  # steps again from the reloaded counter
    assert s.frame(s.read(), 12.0, 2).energy_step_mj == [200, 0, None]


def test_no_counter_anywhere_leaves_the_step_columns_out() -> None:
    s = NvmlSampler(fake_nvml([Gpu(energy_mj=None)]), "n", "s")
    s.frame(s.read(), 0.0, 0)
    f = s.frame(s.read(), 1.0, 1)
    assert (f.energy_step_mj, f.step_s, f.step_power_w) == (None, None, None)


def test_framed_steps_pass_the_topic_contract() -> None:
    from schemas.registry import contract_for
    from schemas.validation import Limits, Rejection

    s = NvmlSampler(fake_nvml([Gpu(), Gpu(energy_mj=None)]), "n", "s")
    s.frame(s.read(), 1000.0, 0)
    f = s.frame(s.read(), 1001.0, 1)
    got = contract_for("telemetry.gpu.v1").decode(msgspec.json.encode(f), Limits(now_s=1001.0))
    assert not isinstance(got, Rejection), got
    assert got == f and f.energy_step_mj == [0, None]
