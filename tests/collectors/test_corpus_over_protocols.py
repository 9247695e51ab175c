"""Each corpus entry served over its real protocol by a fake miner: the client asks for
what it asks for, tolerates the optional commands that do not answer, and the reading it
builds equals the one parsed from the files."""

from __future__ import annotations

import pytest

from streams.collectors.asic_client import Endpoint, poll_fleet
from streams.collectors.asic_parse import parse
from tests.collectors.corpus_entries import Entry, entries
from tests.collectors.fake_miner import FakeBraiins, FakeCgminer, FakeWhatsminerV3

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.name)
async def test_poll_equals_parse(entry: Entry) -> None:
    fake: FakeCgminer | FakeBraiins | FakeWhatsminerV3
    if entry.kind == "braiins":
        fake = await FakeBraiins(entry.folder).start()
    elif entry.kind == "whatsminer_v3":
        fake = await FakeWhatsminerV3(entry.folder).start()
    else:
        fake = await FakeCgminer(entry.folder).start()
    try:
        ep = Endpoint(entry.name, "127.0.0.1", fake.port, entry.kind, "root", "secret")
        [got] = await poll_fleet([ep], timeout_s=3.0)
    finally:
        await fake.stop()
    assert got.error is None
    assert got == parse(entry.kind, entry.name, entry.replies())
