"""Where things live: production code never imports benchmark code, and the faust
repairs stay in ``streams.faust_runtime`` (read by the agents, not by pure logic)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("infra", "schemas", "streams", "transforms")
# The CLI's bench command is the one way in to the benchmarks, imported lazily when run.
BENCH_ENTRY = {Path("streams/commands/bench.py")}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _modules(*folders: str) -> list[Path]:
    return sorted(p.relative_to(ROOT) for f in folders for p in (ROOT / f).rglob("*.py"))


def test_production_code_never_imports_benchmark_code() -> None:
    offenders = [
        f"{path}: {name}"
        for path in _modules(*PRODUCTION)
        if path.parts[:2] != ("streams", "bench") and path not in BENCH_ENTRY
        for name in _imports(ROOT / path)
        if name == "streams.bench" or name.startswith(("streams.bench.", "tests"))
    ]
    assert not offenders, "benchmark or test code imported by production code:\n" + "\n".join(
        offenders
    )


def test_pure_logic_does_not_reach_the_faust_runtime() -> None:
    pure = _modules("streams/decisions", "transforms", "schemas")
    offenders = [
        f"{path}: {name}"
        for path in pure
        for name in _imports(ROOT / path)
        if name.startswith(("streams.faust_runtime", "faust", "streams.agents"))
    ]
    assert not offenders, "\n".join(offenders)
