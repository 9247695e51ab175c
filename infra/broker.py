"""A single-node Apache Kafka (KRaft) broker run from Maven Central jars.

Kafka 4.x ships on Maven Central as ``org.apache.kafka:kafka_2.13``; ``infra/kafka/pom.xml``
names it with a logging backend. ``ensure_jars`` copies the jars into a cache folder once
(``mvn dependency:copy-dependencies``), ``start`` formats the storage on first use, launches
``kafka.Kafka`` in its own session and waits until the broker answers a metadata request.
Everything lives under ``Settings.broker_dir``: ``config/``, ``data/``, ``broker.log``,
``broker.pid``. Start and stop are idempotent; stop then start keeps topics and data.

With ``Settings.broker_secure`` the broker only accepts SASL_SSL (SCRAM-SHA-512) clients and
enforces ACLs; ``infra.security`` holds the principals, secrets and certificates. A data
folder formatted in one mode is never started in the other (that would drop or lock out
the users).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra import security
from infra.admin import answers as metadata_answers
from streams.errors import TerminalError
from streams.settings import Settings

POM = Path(__file__).with_name("kafka") / "pom.xml"
LOG4J = Path(__file__).with_name("kafka") / "log4j2.properties"
JARS_DONE = ".complete"

Progress = Callable[[str], None]


class BrokerError(TerminalError, RuntimeError):
    """The local broker could not be fetched, started or stopped. Message says why and where."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    answers: bool
    bootstrap: str
    log_path: Path
    secure: bool = False
    """SASL_SSL + SCRAM + ACLs (``Settings.broker_secure``)."""

    def describe(self) -> str:
        if self.running and self.answers:
            mode = " (SASL_SSL, SCRAM-SHA-512, ACLs)" if self.secure else ""
            return f"running (pid {self.pid}) on {self.bootstrap}{mode}; log {self.log_path}"
        if self.running:
            return (
                f"process {self.pid} alive but {self.bootstrap} not answering; log {self.log_path}"
            )
        if self.answers:
            return f"not started by Spillway, but something answers on {self.bootstrap}"
        return f"stopped; log {self.log_path}"


def _noop(_: str) -> None:
    pass


def java_bin() -> str:
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "java" if home else None
    found = str(candidate) if candidate and candidate.exists() else shutil.which("java")
    if not found:
        raise BrokerError("java not found: install a JDK 17 or newer, or set JAVA_HOME")
    return found


def ensure_jars(settings: Settings, progress: Progress = _noop) -> Path:
    """Fetch Kafka's jars into the cache folder once; return the folder."""
    libs = settings.kafka_libs_dir
    if (libs / JARS_DONE).exists():
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError("mvn (Apache Maven) not found: it fetches Kafka from Maven Central")
    libs.mkdir(parents=True, exist_ok=True)
    progress(f"fetching Apache Kafka {settings.kafka_version} jars from Maven Central into {libs}")
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
        f"-Dkafka.version={settings.kafka_version}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise BrokerError(f"Maven could not fetch Kafka {settings.kafka_version}:\n{tail}")
    jars = list(libs.glob("*.jar"))
    (libs / JARS_DONE).write_text(f"{len(jars)} jars\n")
    size_mb = sum(j.stat().st_size for j in jars) / 1e6
    progress(f"fetched {len(jars)} jars ({size_mb:.1f} MB)")
    return libs


def server_properties(
    settings: Settings, secrets: security.BrokerSecrets | None = None
) -> str:
    """The broker's configuration. Secured mode reads (or is given) the broker's secrets."""
    port = settings.broker_port
    data = settings.broker_dir / "data"
    if settings.broker_secure:
        found = secrets or security.load_secrets(settings)
        listeners = security.server_lines(settings, found)
    else:
        listeners = [
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        ]
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            *listeners,
            "controller.listener.names=CONTROLLER",
            f"controller.quorum.voters=1@127.0.0.1:{port + 1}",
            f"log.dirs={data}",
            "num.partitions=3",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            # Dead-letter envelopes carry an oversized frame's bytes in base64.
            "message.max.bytes=10485760",
            "replica.fetch.max.bytes=10485760",
            "",
        ]
    )


def _paths(settings: Settings) -> tuple[Path, Path, Path, Path]:
    root = settings.broker_dir
    return (
        root / "config" / "server.properties",
        root / "data",
        root / "broker.log",
        root / "broker.pid",
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def _read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def answers(bootstrap: str, timeout_s: float = 2.0, settings: Settings | None = None) -> bool:
    """True when the first bootstrap server accepts TCP and answers a metadata request.

    ``settings`` carry the security a secured broker needs (the admin client's, see
    ``infra.admin``); ``bootstrap`` always wins over their bootstrap servers.
    """
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError:
        return False
    return metadata_answers(settings, bootstrap, timeout_s)


def _probe_settings(settings: Settings) -> Settings | None:
    """Client settings to probe our own broker: the admin's on a secured one."""
    if not settings.broker_secure:
        return None
    try:
        return security.client_settings(settings, security.ADMIN)
    except security.SecurityError:
        return None  # never started: no credentials yet, so it cannot be answering us


def status(settings: Settings) -> BrokerStatus:
    _, _, log, pid_file = _paths(settings)
    pid = _read_pid(pid_file)
    bootstrap = f"127.0.0.1:{settings.broker_port}"
    ok = answers(bootstrap, settings=_probe_settings(settings))
    return BrokerStatus(pid is not None, pid, ok, bootstrap, log, settings.broker_secure)


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log written)"


def _format_storage(
    settings: Settings,
    libs: Path,
    props: Path,
    progress: Progress,
    secrets: security.BrokerSecrets | None = None,
) -> None:
    progress("formatting KRaft storage (first start)")
    args = [
        "-cp",
        f"{libs}/*",
        f"-Dlog4j2.configurationFile={LOG4J}",
        "kafka.tools.StorageTool",
        "format",
        # "=": a random id may start with "-", which argparse would read as an option.
        f"--cluster-id={_cluster_id()}",
        "-c",
        str(props),
    ]
    if secrets is None:
        done = subprocess.run([java_bin(), *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{done.stdout}{done.stderr}")
        return
    # SCRAM users are created at format time. Their passwords go through a java @argfile
    # (mode 0600, deleted after) so that they never appear in a process listing.
    progress(f"creating SCRAM users: {', '.join(secrets.passwords)}")
    argfile = security.secrets_dir(settings) / "format.args"
    body = "\n".join(_argfile_token(a) for a in args + security.scram_format_args(secrets))
    security.write_private(argfile, body.encode())
    try:
        done = subprocess.run(
            [java_bin(), f"@{argfile}"], capture_output=True, text=True, check=False
        )
    finally:
        argfile.unlink(missing_ok=True)
    if done.returncode != 0:
        out = security.redact(done.stdout + done.stderr, secrets)
        raise BrokerError(f"formatting Kafka storage (secured) failed:\n{out}")


def _argfile_token(arg: str) -> str:
    """Quote one argument for a java launcher @argfile."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_mode(settings: Settings, data: Path) -> None:
    """Refuse to start a data folder in the other security mode than it was formatted in."""
    if not (data / "meta.properties").exists():
        return
    has_users = security.credentials_path(settings).exists()
    if settings.broker_secure and not has_users:
        raise BrokerError(
            f"{data} was formatted for a plaintext broker: it has no SCRAM users. Use another "
            "SPILLWAY_HOME for the secured broker (or delete that data folder)"
        )
    if not settings.broker_secure and has_users:
        raise BrokerError(
            f"{data} belongs to a secured broker ({security.credentials_path(settings)}): "
            "set SPILLWAY_BROKER_SECURE=true to start it, never as plaintext"
        )


def _cluster_id() -> str:
    # Kafka cluster ids are 16 random bytes, URL-safe base64 without padding.
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def start(settings: Settings, timeout_s: float = 90.0, progress: Progress = _noop) -> BrokerStatus:
    """Start the broker if it is not running; wait until it answers. Idempotent."""
    current = status(settings)
    if current.running and current.answers:
        progress(f"broker already running: {current.describe()}")
        if settings.broker_secure:
            _secure_ready(settings, progress)  # this namespace's ACLs, if not there yet
        return current
    if current.answers and not current.running:
        raise BrokerError(
            f"port {settings.broker_port} already has a Kafka broker Spillway did not start; "
            "use it with KAFKA_BOOTSTRAP_SERVERS or pick SPILLWAY_BROKER_PORT"
        )
    props, data, log, pid_file = _paths(settings)
    _check_mode(settings, data)
    libs = ensure_jars(settings, progress)
    secrets = _prepare_security(settings, progress) if settings.broker_secure else None
    # Written owner-only: in secured mode it holds the keystore and admin passwords.
    security.write_private(props, server_properties(settings, secrets).encode())
    if not (data / "meta.properties").exists():
        _format_storage(settings, libs, props, progress, secrets)
    if current.running and current.pid:  # alive but deaf: a previous start hung
        stop(settings, progress=progress)
    progress(f"starting Kafka on 127.0.0.1:{settings.broker_port} (log {log})")
    env = dict(os.environ, KAFKA_HEAP_OPTS=f"-Xmx{settings.broker_heap_mb}m")
    cmd = [
        java_bin(),
        f"-Xmx{settings.broker_heap_mb}m",
        "-Xms256m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J}",
        "-cp",
        f"{libs}/*",
        "kafka.Kafka",
        str(props),
    ]
    with open(log, "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout_s
    bootstrap = f"127.0.0.1:{settings.broker_port}"
    probe = _probe_settings(settings)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file.unlink(missing_ok=True)
            raise BrokerError(
                f"Kafka exited with code {proc.returncode} while starting; log: {log}\n"
                + _log_tail(log)
            )
        if answers(bootstrap, timeout_s=1.0, settings=probe):
            progress(f"broker ready on {bootstrap} (pid {proc.pid})")
            if secrets is not None:
                _secure_ready(settings, progress)
            return status(settings)
        time.sleep(0.5)
    raise BrokerError(
        f"Kafka did not answer on {bootstrap} within {timeout_s:.0f} s; log: {log}\n"
        + _log_tail(log)
    )


def _prepare_security(settings: Settings, progress: Progress) -> security.BrokerSecrets:
    try:
        secrets = security.ensure_secrets(settings)
        security.ensure_tls(settings, secrets)
    except security.SecurityError as exc:
        raise BrokerError(str(exc)) from exc
    progress(
        f"secured mode: SASL_SSL + SCRAM-SHA-512 + ACLs; credentials in "
        f"{security.credentials_path(settings)} (mode 0600), CA {security.ca_path(settings)}"
    )
    return secrets


def _secure_ready(settings: Settings, progress: Progress) -> None:
    """Create the ACLs (idempotent) for the settings' topic namespace."""
    admin = security.client_settings(settings, security.ADMIN)
    try:
        n = security.apply_acls(admin, settings.topic_namespace)
    except Exception as exc:
        raise BrokerError(
            f"secured broker started but its ACLs could not be created: {exc}"
        ) from exc
    ns = settings.topic_namespace or "(no namespace)"
    progress(f"{n} ACL entries in place for topic namespace {ns}")


def stop(settings: Settings, timeout_s: float = 60.0, progress: Progress = _noop) -> bool:
    """Stop the broker cleanly (SIGTERM, then SIGKILL after ``timeout_s``). Idempotent."""
    _, _, _, pid_file = _paths(settings)
    pid = _read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        progress("broker not running")
        return False
    progress(f"stopping broker (pid {pid})")
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _pid_alive(pid):
        _reap(pid)
        time.sleep(0.2)
    if _pid_alive(pid):
        progress(f"broker did not stop in {timeout_s:.0f} s; killing it")
        os.killpg(pid, signal.SIGKILL)
        _reap(pid)
    pid_file.unlink(missing_ok=True)
    progress("broker stopped")
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
