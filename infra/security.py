"""Who may do what on Spillway's Kafka, and the files a secured broker needs.

The secured broker (``Settings.broker_secure``) accepts clients only over SASL_SSL with
SCRAM-SHA-512 and checks every request against ACLs (KRaft ``StandardAuthorizer``).
This module holds:

- the principals and their grants, as data (``ROLES``), a pure expansion into ACL entries
  for a topic namespace (``acl_entries``) and a pure evaluator with Kafka's semantics
  (``is_allowed``) so that the policy is tested without a broker;
- the secrets: one random password per principal plus the keystore password, generated on
  first start and kept in ``<broker_dir>/secrets/credentials.json`` (mode 0600, folder
  0700). They are never printed: ``SecretStr`` everywhere, paths in messages;
- the TLS files: a throw-away CA (its key is never written to disk) and a broker
  certificate with SAN ``IP:127.0.0.1`` and ``DNS:localhost`` in a PKCS#12 keystore;
- the broker's server.properties lines for that mode, and client settings per principal;
- ``apply_acls``: creating the ACL entries with kafka-python's admin client (idempotent).

The controller listener uses TLS with client certificates (``ssl.client.auth=required``):
only the broker, holding the CA-signed certificate, can speak to it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets as pysecrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from infra.admin import admin_session
from streams.errors import TerminalError
from streams.settings import Settings

Operation = Literal[
    "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"
]
Resource = Literal["TOPIC", "GROUP", "TRANSACTIONAL_ID"]
Pattern = Literal["LITERAL", "PREFIXED"]

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"
BROKER_CN = "spillway-broker"
BROKER_PRINCIPAL = f"User:CN={BROKER_CN}"
"""Principal of the broker's own TLS certificate on the controller listener."""

AGENT_APP_PREFIX = "spillway-agents"
"""faust app id of the agents (``streams.agents.app.AgentOptions.app_id``) and so the prefix
of their consumer groups, internal topics and transactional ids (after the namespace)."""
SINK_GROUP_PREFIX = "spillway-mart-sink"
BI_GROUP_PREFIX = "spillway-bi"
ACTUATOR_GROUP_PREFIX = "spillway-actuator"
ACTUATOR_READ_TOPICS = (
    "miners.commands.v1",
    "curtailment.events.v1",
    "actuation.in_force.v1",
    "actuation.audit.v1",
    "actuation.pause.v1",
)
"""Only ``agent`` (the controller) writes ``miners.commands.v1``; the actuator reads it, and
the curtailment events for the need its GPU tier covers (``streams.actuation.gpu_tier``)."""


class SecurityError(TerminalError, RuntimeError):
    """Secrets, certificates or ACLs of the secured broker could not be made or applied."""


@dataclass(frozen=True)
class Grant:
    """Allow ``operations`` on resources named ``name`` (exactly, or as a prefix).

    Names are declared without the topic namespace; ``acl_entries`` puts ``<namespace>.``
    in front when ``namespaced``, as Spillway does for topics and for the agents' faust app
    id (their group, internal topics and transactional ids). The sink's and BI's consumer
    groups carry no namespace.
    """

    resource: Resource
    pattern: Pattern
    name: str
    operations: tuple[Operation, ...]
    namespaced: bool = True


@dataclass(frozen=True)
class Role:
    user: str
    purpose: str
    grants: tuple[Grant, ...] = ()
    super_user: bool = False


def _topics(pattern: Pattern, names: Iterable[str], *ops: Operation) -> tuple[Grant, ...]:
    return tuple(Grant("TOPIC", pattern, n, ops) for n in names)


TELEMETRY_GRID_PREFIXES = ("telemetry.", "grid.")
AGENT_READ_PREFIXES = ("telemetry.", "grid.", "site.")
AGENT_WRITE_PREFIXES = (
    "site.power",  # site.power.v1 and site.power.partial.v1
    "surplus.",
    "curtailment.",
    "miners.commands.",
    "alerts.",
    "deadletter.",
)
OUTPUT_TOPICS = (
    "site.power.v1",
    "surplus.events.v1",
    "curtailment.events.v1",
    "miners.commands.v1",
    "alerts.v1",
)
"""What the agents publish for people and other systems (the partial sums are internal)."""
SINK_READ_TOPICS = (
    "site.config.v1",
    "site.power.v1",
    "surplus.events.v1",
    "curtailment.events.v1",
    "miners.commands.v1",
    "alerts.v1",
    "grid.prices.v1",
    "grid.hashprice.v1",
    "grid.carbon.v1",
    "grid.dispatch.v1",
    "telemetry.meter.v1",
    "telemetry.gpu.v1",
    "telemetry.asic.v1",
    "site.power.restated.v1",
    "actuation.outcomes.v1",
)
"""The topics the mart sink reads (``streams.marts.sink.SINK_TOPICS``; a test compares)."""

ROLES: tuple[Role, ...] = (
    Role(ADMIN, "operators: provisioning, ACLs, the doctor", super_user=True),
    Role(
        "collector",
        "device and market collectors: write raw telemetry and grid data, nothing else",
        _topics("PREFIXED", TELEMETRY_GRID_PREFIXES, "WRITE"),
    ),
    Role(
        "agent",
        "faust agents: read inputs, write decisions, alerts and dead letters",
        _topics("PREFIXED", AGENT_READ_PREFIXES, "READ")
        + _topics("PREFIXED", AGENT_WRITE_PREFIXES, "WRITE")
        + (
            Grant("GROUP", "PREFIXED", AGENT_APP_PREFIX, ("READ",)),
            # faust creates and uses its own changelog/repartition/leader topics.
            Grant(
                "TOPIC",
                "PREFIXED",
                AGENT_APP_PREFIX,
                ("CREATE", "READ", "WRITE", "DESCRIBE_CONFIGS"),
            ),
            Grant("TRANSACTIONAL_ID", "PREFIXED", AGENT_APP_PREFIX, ("WRITE", "DESCRIBE")),
        ),
    ),
    Role(
        "sink",
        "mart sink: read what it stores; dead-letter bad records, alert on failed gates",
        _topics("LITERAL", SINK_READ_TOPICS, "READ")
        + _topics("PREFIXED", ("deadletter.", "alerts."), "WRITE")
        + (Grant("GROUP", "PREFIXED", SINK_GROUP_PREFIX, ("READ",), namespaced=False),),
    ),
    Role(
        "actuator",
        "actuator: obey miner commands and operator requests; never write commands",
        _topics("LITERAL", ACTUATOR_READ_TOPICS, "READ")
        + _topics("PREFIXED", ("actuation.", "deadletter."), "WRITE")
        + (Grant("GROUP", "PREFIXED", ACTUATOR_GROUP_PREFIX, ("READ",), namespaced=False),),
    ),
    Role(
        "bi",
        "analysts and dashboards: read published outputs only",
        _topics("LITERAL", OUTPUT_TOPICS, "READ")
        + (Grant("GROUP", "PREFIXED", BI_GROUP_PREFIX, ("READ",), namespaced=False),),
    ),
)

USERS: tuple[str, ...] = tuple(r.user for r in ROLES)


@dataclass(frozen=True)
class AclEntry:
    """One ALLOW entry as Kafka stores it (host ``*``)."""

    principal: str
    resource: Resource
    pattern: Pattern
    name: str
    operation: Operation


def acl_entries(namespace: str = "", roles: Iterable[Role] = ROLES) -> list[AclEntry]:
    """The ALLOW entries for ``roles`` with topic names in ``namespace``. Pure."""
    prefix = f"{namespace}." if namespace else ""
    out: list[AclEntry] = []
    for role in roles:
        for g in role.grants:
            name = prefix + g.name if g.namespaced else g.name
            principal = f"User:{role.user}"
            out += [AclEntry(principal, g.resource, g.pattern, name, op) for op in g.operations]
    return out


def super_users(roles: Iterable[Role] = ROLES) -> list[str]:
    return [f"User:{r.user}" for r in roles if r.super_user] + [BROKER_PRINCIPAL]


# Kafka's implied operations: READ/WRITE/DELETE/ALTER allow DESCRIBE, ALTER_CONFIGS allows
# DESCRIBE_CONFIGS (org.apache.kafka.metadata.authorizer.StandardAuthorizerData).
_IMPLIES: dict[Operation, frozenset[Operation]] = {
    "DESCRIBE": frozenset({"READ", "WRITE", "DELETE", "ALTER", "DESCRIBE"}),
    "DESCRIBE_CONFIGS": frozenset({"ALTER_CONFIGS", "DESCRIBE_CONFIGS"}),
}


def is_allowed(
    user: str,
    operation: Operation,
    resource: Resource,
    name: str,
    entries: Iterable[AclEntry],
    supers: Iterable[str] = (),
) -> bool:
    """Would the broker allow it? Same rules as StandardAuthorizer for ALLOW-only ACLs. Pure."""
    principal = f"User:{user}"
    if principal in set(supers):
        return True
    granting = _IMPLIES.get(operation, frozenset({operation}))
    for e in entries:
        if e.principal != principal or e.resource != resource or e.operation not in granting:
            continue
        if name == e.name or (e.pattern == "PREFIXED" and name.startswith(e.name)):
            return True
    return False


# --- secrets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerSecrets:
    passwords: Mapping[str, SecretStr]
    keystore_password: SecretStr

    def password(self, user: str) -> SecretStr:
        try:
            return self.passwords[user]
        except KeyError:
            raise SecurityError(
                f"no SCRAM user {user!r} on the secured broker; users: {', '.join(self.passwords)}"
            ) from None

    def values(self) -> list[str]:
        """Every secret in clear, for redaction and for tests that look for leaks."""
        plain = [p.get_secret_value() for p in self.passwords.values()]
        return plain + [self.keystore_password.get_secret_value()]


def secrets_dir(settings: Settings) -> Path:
    return settings.broker_dir / "secrets"


def credentials_path(settings: Settings) -> Path:
    return secrets_dir(settings) / "credentials.json"


def keystore_path(settings: Settings) -> Path:
    return secrets_dir(settings) / "broker.p12"


def ca_path(settings: Settings) -> Path:
    """The CA certificate clients trust (public; ``Settings.kafka_ssl_cafile``)."""
    return settings.broker_dir / "tls" / "ca.pem"


def new_password() -> SecretStr:
    # URL-safe alphabet: nothing to quote in JAAS or properties syntax.
    return SecretStr(pysecrets.token_urlsafe(24))


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_secrets(settings: Settings) -> BrokerSecrets:
    path = credentials_path(settings)
    try:
        raw = json.loads(path.read_text())
        return BrokerSecrets(
            {u: SecretStr(p) for u, p in raw["users"].items()}, SecretStr(raw["keystore"])
        )
    except FileNotFoundError:
        raise SecurityError(
            f"no credentials at {path}: start the secured broker first "
            "(SPILLWAY_BROKER_SECURE=true spillway broker start)"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # The exception text could quote the file's content: name its type only.
        raise SecurityError(
            f"cannot read broker credentials {path}: {type(exc).__name__}"
        ) from None


def ensure_secrets(settings: Settings) -> BrokerSecrets:
    """Load the credentials, creating them (one random password per user) on first use."""
    path = credentials_path(settings)
    if path.exists():
        found = load_secrets(settings)
        missing = [u for u in USERS if u not in found.passwords]
        if not missing:
            return found
        raise SecurityError(
            f"{path} lacks users {missing}: they must exist when the storage is formatted; "
            "use a new SPILLWAY_HOME"
        )
    made = BrokerSecrets({u: new_password() for u in USERS}, new_password())
    body = {
        "users": {u: p.get_secret_value() for u, p in made.passwords.items()},
        "keystore": made.keystore_password.get_secret_value(),
    }
    write_private(path, json.dumps(body, indent=1).encode())
    return made


def redact(text: str, found: BrokerSecrets) -> str:
    for value in found.values():
        text = text.replace(value, "**********")
    return text


# --- TLS -----------------------------------------------------------------------------------


def ensure_tls(settings: Settings, found: BrokerSecrets, days: int = 365) -> tuple[Path, Path]:
    """(CA certificate, broker keystore); made again when missing or expiring within a day."""
    ca, keystore = ca_path(settings), keystore_path(settings)
    if ca.exists() and keystore.exists() and _valid_for(ca, dt.timedelta(days=1)):
        return ca, keystore
    ca_pem, p12 = make_tls(found.keystore_password, days=days)
    ca.parent.mkdir(parents=True, exist_ok=True)
    ca.write_bytes(ca_pem)
    write_private(keystore, p12)
    return ca, keystore


def _valid_for(cert_pem: Path, margin: dt.timedelta) -> bool:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    return cert.not_valid_after_utc - margin > dt.datetime.now(dt.UTC)


def make_tls(keystore_password: SecretStr, days: int = 365) -> tuple[bytes, bytes]:
    """A new CA (PEM certificate) and a PKCS#12 keystore holding the broker's key and chain.

    The broker certificate is valid for 127.0.0.1 and localhost, for both server and client
    use (the broker authenticates to its own controller listener with it).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Spillway local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    p12 = pkcs12.serialize_key_and_certificates(
        b"broker",
        key,
        cert,
        [ca_cert],
        serialization.BestAvailableEncryption(keystore_password.get_secret_value().encode()),
    )
    return ca_cert.public_bytes(serialization.Encoding.PEM), p12


# --- broker and client configuration -------------------------------------------------------


def server_lines(settings: Settings, found: BrokerSecrets) -> list[str]:
    """server.properties lines of the secured mode (listeners, TLS, SASL, authorizer).

    Holds the keystore and admin passwords: the broker writes the file with mode 0600, and
    Kafka logs these values as ``[hidden]``.
    """
    port = settings.broker_port
    admin_pw = found.password(ADMIN).get_secret_value()
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN}" password="{admin_pw}";'
    )
    return [
        f"listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}",
        f"advertised.listeners=SASL_SSL://127.0.0.1:{port}",
        "listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL",
        "inter.broker.listener.name=SASL_SSL",
        f"sasl.enabled.mechanisms={MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PKCS12",
        f"ssl.keystore.location={keystore_path(settings)}",
        f"ssl.keystore.password={found.keystore_password.get_secret_value()}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={ca_path(settings)}",
        "ssl.endpoint.identification.algorithm=https",
        "ssl.enabled.protocols=TLSv1.3,TLSv1.2",
        "listener.name.controller.ssl.client.auth=required",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        f"super.users={';'.join(super_users())}",
        "allow.everyone.if.no.acl.found=false",
    ]


def scram_format_args(found: BrokerSecrets) -> list[str]:
    """``kafka.tools.StorageTool format`` arguments creating every SCRAM user."""
    args: list[str] = []
    for user, pw in found.passwords.items():
        args += ["--add-scram", f"{MECHANISM}=[name={user},password={pw.get_secret_value()}]"]
    return args


def client_settings(settings: Settings, user: str) -> Settings:
    """``settings`` pointed at the local secured broker as ``user`` (SASL_SSL, SCRAM)."""
    found = load_secrets(settings)
    return settings.model_copy(
        update={
            "kafka_bootstrap_servers": f"127.0.0.1:{settings.broker_port}",
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": MECHANISM,
            "kafka_sasl_username": user,
            "kafka_sasl_password": found.password(user),
            "kafka_ssl_cafile": ca_path(settings),
        }
    )


def apply_acls(admin_settings: Settings, namespace: str = "") -> int:
    """Create every ACL entry for ``namespace`` (idempotent); return how many were sent."""
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    acls = [
        ACL(
            principal=e.principal,
            host="*",
            operation=ACLOperation[e.operation],
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(
                ResourceType[e.resource], e.name, ACLResourcePatternType[e.pattern]
            ),
        )
        for e in acl_entries(namespace)
    ]
    with admin_session(admin_settings, "spillway-acls") as admin:
        result = admin.create_acls(acls)
    failed = result.get("failed", [])
    if failed:
        raise SecurityError(f"{len(failed)} of {len(acls)} ACLs were refused: {failed[:3]}")
    return len(acls)
