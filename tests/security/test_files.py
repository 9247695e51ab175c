"""Secrets, certificates and broker configuration of the secured mode (no broker)."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import SecretStr

from infra import broker, security
from streams.settings import Settings


def _settings(tmp_path: Path, secure: bool = True) -> Settings:
    return Settings(home=tmp_path, broker_port=29092, broker_secure=secure,
                    kafka_bootstrap_servers="127.0.0.1:29092")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_are_owner_only_random_and_stable(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = security.ensure_secrets(settings)
    again = security.ensure_secrets(settings)
    path = security.credentials_path(settings)
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert set(first.passwords) == set(security.USERS)
    assert first.values() == again.values()
    values = first.values()
    assert len(set(values)) == len(values)  # one password each, keystore's included
    assert all(len(v) >= 32 for v in values)  # 24 random bytes, base64
    assert all(v not in repr(first) for v in values)


def test_missing_credentials_say_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(security.SecurityError, match="SPILLWAY_BROKER_SECURE=true"):
        security.load_secrets(_settings(tmp_path))


def test_unreadable_credentials_do_not_quote_the_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    security.write_private(security.credentials_path(settings), b'{"users": "s3cr3t-value"')
    with pytest.raises(security.SecurityError) as info:
        security.load_secrets(settings)
    assert "s3cr3t" not in str(info.value) and str(security.credentials_path(settings)) in str(
        info.value
    )


def test_redact_hides_every_secret(tmp_path: Path) -> None:
    found = security.ensure_secrets(_settings(tmp_path))
    text = "out: " + " ".join(found.values())
    cleaned = security.redact(text, found)
    assert all(v not in cleaned for v in found.values())
    assert cleaned.count("**********") == len(found.values())


def test_certificates_trust_chain_names_and_uses() -> None:
    password = SecretStr("keystore-pw")
    ca_pem, p12 = security.make_tls(password, days=30)
    ca = x509.load_pem_x509_certificate(ca_pem)
    key, cert, extra = pkcs12.load_key_and_certificates(p12, b"keystore-pw")
    assert key is not None and cert is not None
    assert [c.subject for c in extra] == [ca.subject]
    # Signed by the CA: verifying with the CA's public key raises if not.
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    assert cert.signature_hash_algorithm is not None
    ca_key.verify(cert.signature, cert.tbs_certificate_bytes,
                  ec.ECDSA(cert.signature_hash_algorithm))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    uses = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert uses == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert cert.subject.rfc4514_string() == f"CN={security.BROKER_CN}"
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert 29 <= days <= 30
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(p12, b"wrong")


def test_tls_files_are_kept_until_they_expire(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    found = security.ensure_secrets(settings)
    ca, keystore = security.ensure_tls(settings, found)
    assert _mode(keystore) == 0o600
    before = ca.read_bytes()
    security.ensure_tls(settings, found)
    assert ca.read_bytes() == before
    # The CA's private key is never written anywhere under the broker folder.
    for f in settings.broker_dir.rglob("*"):
        if f.is_file():
            assert b"PRIVATE KEY" not in f.read_bytes(), f


def test_secured_properties_have_no_plaintext_listener(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    found = security.ensure_secrets(settings)
    props = dict(
        line.split("=", 1) for line in broker.server_properties(settings, found).splitlines()
        if line
    )
    assert props["listeners"] == "SASL_SSL://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL"
    assert "PLAINTEXT" not in props["listener.security.protocol.map"].replace("SASL", "")
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["super.users"].split(";") == ["User:admin", "User:CN=spillway-broker"]
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"


def test_plain_properties_unchanged_by_the_secure_mode(tmp_path: Path) -> None:
    text = broker.server_properties(_settings(tmp_path, secure=False))
    assert "listeners=PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093" in text
    assert "authorizer" not in text and "sasl" not in text


def test_scram_users_for_the_storage_tool(tmp_path: Path) -> None:
    found = security.ensure_secrets(_settings(tmp_path))
    args = security.scram_format_args(found)
    assert args[::2] == ["--add-scram"] * len(security.USERS)
    for user, arg in zip(security.USERS, args[1::2], strict=True):
        pw = found.password(user).get_secret_value()
        assert arg == f"SCRAM-SHA-512=[name={user},password={pw}]"


@pytest.mark.parametrize(
    ("arg", "token"),
    [
        ("format", '"format"'),
        ("/tmp/a b/*", '"/tmp/a b/*"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("C:\\x", '"C:\\\\x"'),
        ("", '""'),
    ],
)
def test_argfile_quoting(arg: str, token: str) -> None:
    assert broker._argfile_token(arg) == token


def test_client_settings_per_user_keep_the_password_secret(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    found = security.ensure_secrets(settings)
    bi = security.client_settings(settings, "bi")
    pw = found.password("bi").get_secret_value()
    assert bi.kafka_security_protocol == "SASL_SSL" and bi.kafka_sasl_username == "bi"
    assert bi.kafka_ssl_cafile == security.ca_path(settings)
    assert bi.librdkafka_config()["sasl.password"] == pw
    assert pw not in repr(bi) and pw not in str(bi.redacted())
    with pytest.raises(security.SecurityError, match="no SCRAM user 'mallory'"):
        security.client_settings(settings, "mallory")


@pytest.mark.parametrize(("formatted_secure", "start_secure"), [(False, True), (True, False)])
def test_a_data_folder_never_switches_mode(
    tmp_path: Path, formatted_secure: bool, start_secure: bool
) -> None:
    settings = _settings(tmp_path, secure=start_secure)
    data = settings.broker_dir / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("cluster.id=x\n")
    if formatted_secure:
        security.ensure_secrets(settings)
    with pytest.raises(broker.BrokerError, match="SPILLWAY_BROKER_SECURE|plaintext broker"):
        broker.start(settings, timeout_s=1)
