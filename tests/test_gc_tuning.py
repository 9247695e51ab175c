import gc

from streams.gc_tuning import THRESHOLDS, throughput_gc


def test_throughput_gc_sets_and_restores_thresholds() -> None:
    before = gc.get_threshold()
    with throughput_gc():
        assert gc.get_threshold() == THRESHOLDS
        assert gc.isenabled()
    assert gc.get_threshold() == before


def test_throughput_gc_restores_after_an_error() -> None:
    before = gc.get_threshold()
    try:
        with throughput_gc():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
