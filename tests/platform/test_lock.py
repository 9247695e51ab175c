"""The lock file (requirements.lock) against pyproject.toml and against what is installed.

``bash infra/lock.sh --check`` re-resolves with uv; these checks need no network: every
declared requirement is pinned in the lock at a version it allows, and the environment the
tests run in holds exactly the locked versions (so every figure is measured on them).
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked() -> dict[str, Version]:
    """The lock's pins that apply to this interpreter and platform."""
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = PIN.match(line)
        if not m:
            continue
        name, ver, marker = m.groups()
        if marker and not Marker(marker).evaluate():
            continue
        pins[canonicalize_name(name.split("[")[0])] = Version(ver)
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(r) for r in reqs]


def test_every_declared_requirement_is_pinned_at_a_version_it_allows() -> None:
    pins = locked()
    problems = []
    for req in declared():
        if req.marker and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req.name} is declared but not in requirements.lock")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{req.name}: lock has {pins[name]}, pyproject wants {req.specifier}")
    assert not problems, "run bash infra/lock.sh:\n" + "\n".join(problems)


def test_the_faust_stack_is_pinned_exactly() -> None:
    exact: dict[str, Requirement] = {canonicalize_name(r.name): r for r in declared()}
    for name in ("faust-streaming", "mode-streaming", "aiokafka"):
        spec = list(exact[name].specifier)
        assert len(spec) == 1 and spec[0].operator == "==", (
            f"{name} must be pinned exactly in pyproject.toml (streams.faust_runtime reaches "
            f"into its internals), not {exact[name].specifier}"
        )


def test_the_environment_holds_exactly_the_locked_versions() -> None:
    wrong = []
    for name, pin in sorted(locked().items()):
        try:
            have = Version(version(name))
        except PackageNotFoundError:
            wrong.append(f"{name}: locked {pin}, not installed")
            continue
        if have != pin:
            wrong.append(f"{name}: locked {pin}, installed {have}")
    assert not wrong, "re-run bash infra/setup.sh:\n" + "\n".join(wrong)
