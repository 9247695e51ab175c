"""Every field of every corpus entry, as parsed from the replies the device gave: values
(floats to 1e-9 relative), a reason for each field left None, and no reason for a field
that was read. Expected values were written by hand from the reply files (README)."""

from __future__ import annotations

import pytest

from streams.collectors.asic_parse import COMMANDS, parse
from tests.collectors.corpus_entries import CORPUS, Entry, entries, reply_file

ENTRIES = entries()
FIELDS = ("model", "hashrate_ths", "power_w", "temp_c", "fan_rpm", "state", "power_limit_w")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_field(entry: Entry) -> None:
    got = parse(entry.kind, entry.name, entry.replies())
    assert set(entry.expected) == set(FIELDS)
    for field in FIELDS:
        want, have = entry.expected[field], getattr(got, field)
        if isinstance(want, float) and have is not None:
            assert have == pytest.approx(want, rel=1e-9), field
        else:
            assert have == want, field
    unread = {f for f in FIELDS if entry.expected[f] is None}
    unread |= {"state"} if got.state == "unknown" else set()
    assert set(dict(got.missing)) == unread  # a reason for each None, none for read fields
    for field, words in entry.reasons.items():
        assert words in (got.reason(field) or ""), field


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_files_match_the_commands(entry: Entry) -> None:
    """A misnamed file must not pass for a command the miner did not answer."""
    want = {reply_file(c) for c in COMMANDS[entry.kind] if c not in entry.no_reply}
    have = {p.name for p in entry.folder.glob("*.json")} - {"expected.json"}
    assert have == want
    assert set(entry.no_reply) <= set(COMMANDS[entry.kind])


def test_corpus_breadth() -> None:
    assert len(ENTRIES) >= 10
    assert {e.origin for e in ENTRIES} == {"real", "reconstructed"}
    assert {e.kind for e in ENTRIES} == set(COMMANDS)
    readme = (CORPUS / "README.md").read_text()
    assert all(e.name in readme for e in ENTRIES)  # each entry's source is written down
