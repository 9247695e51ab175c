"""Whatsminer authentication: md5-crypt against OpenSSL's known outputs, AES round trip."""

from __future__ import annotations

import pytest

from streams.actuation import crypto


@pytest.mark.parametrize(
    ("password", "salt", "expected"),
    [
        # `openssl passwd -1 -salt saltsalt password` and `-salt ab12 x`
        ("password", "saltsalt", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"),
        ("x", "ab12", "$1$ab12$KpzewUzIvlZT4uadlKq6./"),
    ],
)
def test_md5_crypt_matches_openssl(password: str, salt: str, expected: str) -> None:
    assert crypto.md5_crypt(password, salt) == expected


def test_v2_command_round_trips_and_carries_the_sign() -> None:
    key, sign = crypto.v2_session("admin", {"salt": "BQ5hoXV9", "newsalt": "ab12", "time": "1700"})
    assert len(key) == 32
    wire = crypto.v2_encrypt(key, sign, {"cmd": "power_off", "respbefore": "true"})
    import json

    data = json.loads(wire)
    assert data["enc"] == 1
    assert crypto.v2_decrypt(key, data["data"]) == {
        "cmd": "power_off",
        "respbefore": "true",
        "token": sign,
    }


def test_v2_session_names_the_missing_field() -> None:
    with pytest.raises(ValueError, match="newsalt"):
        crypto.v2_session("admin", {"salt": "x", "time": "1"})


def test_v3_token_is_8_chars_and_depends_on_every_input() -> None:
    t = crypto.v3_token("set.miner.service", "pw", "salt", 100)
    assert len(t) == 8
    assert t != crypto.v3_token("set.miner.service", "pw", "salt", 101)
    assert t != crypto.v3_token("set.miner.power", "pw", "salt", 100)
