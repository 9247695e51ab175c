"""The commands after ``spillway run`` find what it made (``streams.pipeline.last_run``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.marts.publish import VIEWS_FILE
from streams.pipeline import last_run
from streams.settings import Settings


def _settings(home: Path, **kw: object) -> Settings:
    return Settings(home=home, **kw)  # type: ignore[arg-type]


def test_reading_settings_follow_the_last_run_when_nothing_was_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SPILLWAY_TOPIC_NAMESPACE", raising=False)
    base = _settings(tmp_path)
    run = _settings(tmp_path / "runs" / "run1", topic_namespace="run1", max_age_s=3e8)
    last_run.record(base, run)
    got = last_run.reading_settings(base)
    assert (got.topic_namespace, got.marts_dir, got.max_age_s) == ("run1", run.marts_dir, 3e8)
    assert "run1" in capsys.readouterr().err


def test_own_marts_or_a_chosen_namespace_win_over_the_last_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPILLWAY_TOPIC_NAMESPACE", raising=False)
    base = _settings(tmp_path)
    last_run.record(base, _settings(tmp_path / "r", topic_namespace="run1"))
    assert (
        last_run.reading_settings(_settings(tmp_path, topic_namespace="prod")).topic_namespace
        == "prod"
    )
    base.marts_dir.mkdir(parents=True)
    (base.marts_dir / VIEWS_FILE).write_bytes(b"")
    assert last_run.reading_settings(base, quiet=True) == base


def test_no_last_run_leaves_the_settings_as_they_are(tmp_path: Path) -> None:
    base = _settings(tmp_path)
    assert last_run.reading_settings(base, quiet=True) == base
