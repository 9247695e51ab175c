"""The read-back's retry of transient broker errors (pure logic: the call is a stand-in)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypedDict, Unpack

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.faust_runtime.readback import is_transient, with_retries


def failing(errors: Sequence[BaseException], result: str = "ok") -> Callable[[], str]:
    """A call that raises each of ``errors`` in turn, then returns ``result``."""
    left = list(errors)

    def call() -> str:
        if left:
            raise left.pop(0)
        return result

    return call


class KafkaFlags(TypedDict, total=False):
    """The keyword flags ``KafkaError`` takes."""

    fatal: bool
    retriable: bool
    txn_requires_abort: bool


def kafka(code: int, **flags: Unpack[KafkaFlags]) -> KafkaException:
    return KafkaException(KafkaError(code, **flags))


def test_a_leader_moving_is_tried_again_until_it_answers() -> None:
    slept: list[float] = []
    call = failing([kafka(KafkaError.NOT_LEADER_FOR_PARTITION), kafka(KafkaError.NOT_COORDINATOR)])
    assert with_retries(call, "lookup", delays=(0.1, 0.2, 0.3), sleep=slept.append) == "ok"
    assert slept == [0.1, 0.2]


def test_a_lasting_transient_error_is_raised_after_the_last_try() -> None:
    slept: list[float] = []
    errors = [kafka(KafkaError.LEADER_NOT_AVAILABLE) for _ in range(4)]
    with pytest.raises(KafkaException) as raised:
        with_retries(failing(errors), "lookup", delays=(0.1, 0.2), sleep=slept.append)
    assert raised.value.args[0].code() == KafkaError.LEADER_NOT_AVAILABLE
    assert slept == [0.1, 0.2]


def test_a_permanent_error_is_raised_at_once() -> None:
    slept: list[float] = []
    call = failing([kafka(KafkaError.TOPIC_AUTHORIZATION_FAILED)])
    with pytest.raises(KafkaException):
        with_retries(call, "lookup", delays=(0.1,), sleep=slept.append)
    assert slept == []


def test_errors_other_than_kafka_are_not_retried() -> None:
    slept: list[float] = []
    with pytest.raises(TimeoutError):
        with_retries(
            failing([TimeoutError("nothing"), TimeoutError("nothing")]), "x", sleep=slept.append
        )
    assert slept == []


def test_what_counts_as_transient() -> None:
    assert is_transient(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
    assert is_transient(KafkaError(KafkaError._TRANSPORT))
    assert is_transient(KafkaError(KafkaError.INVALID_REQUEST, retriable=True))
    assert not is_transient(KafkaError(KafkaError.INVALID_REQUEST))
    assert not is_transient(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
