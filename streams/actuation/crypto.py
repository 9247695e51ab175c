"""Whatsminer API authentication, pure (no I/O).

API v2 (btminer, TCP 4028): a privileged command is AES-256-ECB encrypted with
``sha256(md5crypt(admin_password, salt))`` and carries ``md5crypt(that + time, newsalt)``
as its token; ``salt``, ``newsalt`` and ``time`` come from ``get_token`` (Whatsminer API
V2.0.x PDF, as implemented by pyasic ``rpc/btminer.py`` ``create_privileged_cmd``).
API v3 (TCP 4433): a ``set.*`` command carries ``ts`` and
``token = base64(sha256(cmd + password + salt + ts))[:8]`` (Whatsminer API v3.0.1 as
implemented by public v3 clients). md5-crypt is written here because ``crypt`` leaves the
standard library in Python 3.13 and passlib is not a dependency.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _to64(value: int, n: int) -> str:
    out = []
    for _ in range(n):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return "".join(out)


def md5_crypt(password: str, salt: str) -> str:
    """``$1$<salt>$<hash>``, the FreeBSD md5-crypt (``openssl passwd -1``)."""
    pw = password.encode()
    s = salt.encode()[:8]
    magic = b"$1$"
    alt = hashlib.md5(pw + s + pw).digest()
    ctx = hashlib.md5(pw + magic + s)
    left = len(pw)
    while left > 0:
        ctx.update(alt[: min(16, left)])
        left -= 16
    i = len(pw)
    while i:
        ctx.update(b"\x00" if i & 1 else pw[:1])
        i >>= 1
    final = ctx.digest()
    for r in range(1000):
        c = hashlib.md5()
        c.update(pw if r & 1 else final)
        if r % 3:
            c.update(s)
        if r % 7:
            c.update(pw)
        c.update(final if r & 1 else pw)
        final = c.digest()
    f = final
    out = "".join(
        _to64((f[a] << 16) | (f[b] << 8) | f[c], 4)
        for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5))
    )
    out += _to64(f[11], 2)
    return f"$1${s.decode()}${out}"


def _hash_part(password: str, salt: str) -> str:
    return md5_crypt(password, salt).split("$")[3]


def v2_session(password: str, token_msg: dict[str, Any]) -> tuple[bytes, str]:
    """(AES key, host_sign) from ``get_token``'s ``Msg`` (``salt``, ``newsalt``, ``time``)."""
    try:
        passwd_md5 = _hash_part(password, str(token_msg["salt"]))
        sign = _hash_part(passwd_md5 + str(token_msg["time"]), str(token_msg["newsalt"]))
    except KeyError as exc:
        raise ValueError(f"get_token reply lacks {exc}") from None
    return hashlib.sha256(passwd_md5.encode()).digest(), sign


def v2_encrypt(key: bytes, sign: str, command: dict[str, Any]) -> bytes:
    """The wire form of a privileged v2 command: ``{"enc": 1, "data": <b64 AES-ECB>}``."""
    plain = json.dumps({**command, "token": sign}).encode()
    plain += b"\x00" * (-len(plain) % 16)
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    data = base64.b64encode(enc.update(plain) + enc.finalize()).decode()
    return json.dumps({"enc": 1, "data": data}).encode()


def v2_decrypt(key: bytes, blob: str) -> dict[str, Any]:
    """A privileged reply's ``enc`` field back to its JSON object."""
    dec = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    raw = dec.update(base64.b64decode(blob)) + dec.finalize()
    out = json.loads(raw.rstrip(b"\x00").decode())
    if not isinstance(out, dict):
        raise ValueError("decrypted reply is not a JSON object")
    return out


def v3_token(cmd: str, password: str, salt: str, ts: int) -> str:
    digest = hashlib.sha256(f"{cmd}{password}{salt}{ts}".encode()).digest()
    return base64.b64encode(digest).decode()[:8]
