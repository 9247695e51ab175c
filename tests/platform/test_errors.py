"""One error root: every project exception is a SpillwayError of one kind and keeps its
builtin base; the CLI exits 75 (EX_TEMPFAIL) on a transient error and 1 on a terminal one."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from streams.cli import main
from streams.errors import EX_TEMPFAIL, SpillwayError, TerminalError, TransientError

PACKAGES = ("infra", "schemas", "streams", "transforms")
TRANSIENT = {
    "streams.io.kafka.DeliveryFailed",
    "streams.collectors.modbus_meter.ModbusReadError",
    "streams.marts.store.StoreError",
    "infra.admin.AdminError",
}
"""The broker not acknowledging yet, a meter not answering, the sink file locked by another
process, topics or a group's coordinator not ready yet: each may pass on its own. Every
other project error is terminal."""


def _project_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for pkg in PACKAGES:
        root = importlib.import_module(pkg)
        for info in pkgutil.walk_packages(root.__path__, f"{pkg}."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue  # importing a __main__ would run the command
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__
                ):
                    found[f"{module.__name__}.{name}"] = obj
    return found


EXCEPTIONS = _project_exceptions()
ROOTS = {
    "streams.errors.SpillwayError",
    "streams.errors.TransientError",
    "streams.errors.TerminalError",
}


def test_the_walk_finds_the_known_errors() -> None:
    # Guards the walk itself: an import that silently found nothing would pass every row.
    assert len(EXCEPTIONS) >= 30
    assert "streams.site_file.SiteFileError" in EXCEPTIONS
    assert "transforms.settlement.SettlementInputError" in EXCEPTIONS


@pytest.mark.parametrize("name", sorted(set(EXCEPTIONS) - ROOTS))
def test_every_project_error_has_a_kind_and_keeps_its_builtin_base(name: str) -> None:
    cls = EXCEPTIONS[name]
    assert issubclass(cls, SpillwayError), f"{name} does not derive from SpillwayError"
    kind = TransientError if name in TRANSIENT else TerminalError
    assert issubclass(cls, kind), f"{name} should be a {kind.__name__}"
    assert cls.transient is (kind is TransientError)


def test_existing_except_clauses_still_catch() -> None:
    from streams.marts.query import MartsMissing
    from streams.site_file import SiteFileError

    with pytest.raises(ValueError):
        raise SiteFileError("x")
    with pytest.raises(FileNotFoundError):
        raise MartsMissing("x")


def test_the_pure_packages_import_no_project_module_through_the_root() -> None:
    code = (
        "import sys, streams.errors; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('infra', 'schemas', 'streams', 'transforms')))"
    )
    out = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['streams', 'streams.errors']"


def test_a_bad_site_file_is_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("site_id = [unclosed\n")
    with pytest.raises(SystemExit) as done:
        main(["simulate", "--site", str(bad)])
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert "SiteFileError" in err and "not valid TOML" in err
    assert "retrying will not help" in err


def test_a_sink_file_locked_by_another_process_is_transient(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "sink.duckdb"
    holder = subprocess.Popen(  # noqa: S603 - fixed argv
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read()",
            str(db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(SystemExit) as done:
            main(["sink", "publish", "--db", str(db)])
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    assert done.value.code == EX_TEMPFAIL
    err = capsys.readouterr().err
    assert "StoreError" in err and "another sink" in err
    assert "retrying later may help" in err


# --- the retries read exc.transient ----------------------------------------------------------


def test_the_readback_retries_a_transient_spillway_error_and_not_a_terminal_one() -> None:
    from streams.faust_runtime.readback import is_transient, with_retries
    from streams.io.kafka import DeliveryFailed
    from streams.site_file import SiteFileError

    assert is_transient(DeliveryFailed("3 messages unacknowledged"))
    assert not is_transient(SiteFileError("bad"))
    left: list[Exception] = [DeliveryFailed("a"), DeliveryFailed("b")]

    def call() -> str:
        if left:
            raise left.pop(0)
        return "ok"

    slept: list[float] = []
    assert with_retries(call, "x", delays=(0.1, 0.2, 0.3), sleep=slept.append) == "ok"
    assert slept == [0.1, 0.2]
    left.append(SiteFileError("bad"))
    with pytest.raises(SiteFileError):
        with_retries(call, "x", delays=(0.1,), sleep=slept.append)
    assert slept == [0.1, 0.2]


class _Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.flushed = 0

    def send(
        self,
        base: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        self.sent.append((base, value, key))

    def flush(self, timeout_s: float = 60.0) -> None:
        self.flushed += 1


def test_a_polling_loop_goes_on_after_a_transient_error_and_stops_on_a_terminal_one() -> None:
    import asyncio

    from streams.collectors.loops import _paced
    from streams.collectors.modbus_meter import ModbusReadError
    from streams.collectors.nvml import NvmlReadError

    sink = _Sink()
    reports: list[str] = []
    fails: dict[int, Exception] = {1: ModbusReadError("m1: no reply"), 2: ModbusReadError("x")}

    async def once(seq: int) -> None:
        if seq in fails:
            raise fails[seq]
        sink.send("telemetry.meter.v1", str(seq).encode())

    done = asyncio.run(_paced(once, sink, 0.0, 4, reports.append))
    assert done == 4 and [v for _, v, _ in sink.sent] == [b"0", b"3"] and sink.flushed == 1
    assert len(reports) == 2 and "2 in a row" in reports[1] and "ModbusReadError" in reports[1]

    fails[0] = NvmlReadError("GPU 0: no power reading")
    with pytest.raises(NvmlReadError):
        asyncio.run(_paced(once, sink, 0.0, 4, reports.append))


@pytest.mark.parametrize(
    ("period", "failures", "wait"),
    [
        (1.0, 0, 1.0),
        (1.0, 1, 2.0),
        (1.0, 3, 8.0),
        (1.0, 10, 60.0),
        (5.0, 2, 20.0),
        (120.0, 1, 120.0),
        (120.0, 0, 120.0),
    ],
)
def test_the_wait_after_failures_in_a_row_doubles_up_to_a_minute(
    period: float, failures: int, wait: float
) -> None:
    from streams.collectors.loops import backoff_s

    assert backoff_s(period, failures) == wait
