"""Production over TLS: amqps:// and rediss:// to a RabbitMQ node and a Redis of the
test's own, their certificates signed by a CA made here (openssl), checked."""

import subprocess
import sys

import pytest

from conftest import free_port, run
from test_faults import PACKAGE, PrivateRabbit, PrivateRedis

pytestmark = pytest.mark.slow


def tls_certificates(folder):
    """ca.pem, and server.pem and server.key for localhost, signed by it."""
    folder.mkdir()

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=localhost")  # fmt: skip
    (folder / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2",
            "-extfile", "san.cnf")  # fmt: skip
    return folder


@pytest.fixture
def certs(tmp_path):
    return tls_certificates(tmp_path / "certs")


def rabbit_over_tls(folder, certs):
    folder.mkdir()
    port = free_port()
    options = ", ".join(
        f'{{{name}, "{certs / file}"}}'
        for name, file in [("cacertfile", "ca.pem"), ("certfile", "server.pem"),
                           ("keyfile", "server.key")]
    )  # fmt: skip
    config = f"[{{rabbit, [{{ssl_listeners, [{port}]}}, {{ssl_options, [{options}]}}]}}]."
    return PrivateRabbit(folder, config), f"amqps://guest:guest@localhost:{port}//"


def test_amqps_and_rediss_run_the_chord_with_the_certificates_checked(baked, tmp_path, certs):
    """With the CA in SSL_CERT_FILE, make check says both answer and make demo prints 10;
    without it, both are one line each: the certificate is not trusted."""
    rabbit, broker = rabbit_over_tls(tmp_path / "rabbit", certs)
    (tmp_path / "redis").mkdir()
    redis = PrivateRedis(tmp_path / "redis", certs)
    redis.start()
    try:
        env = {"CELERY_ENV": "production", "CELERY_BROKER_URL": broker}
        env.update(CELERY_RESULT_BACKEND=redis.url, CELERY_QUEUE="tls")
        env["CELERY_DATA_DIR"] = str(tmp_path / "data")  # demo's worker log: not in `baked`
        cli = [sys.executable, "-m", f"{PACKAGE}.cli"]
        untrusted = run([*cli, "check"], baked, check=False, **env)
        trusted = {**env, "SSL_CERT_FILE": str(certs / "ca.pem")}
        check = run([*cli, "check"], baked, **trusted)
        demo = run([*cli, "demo"], baked, timeout=120, **trusted)
    finally:
        redis.stop()
        rabbit.kill()
    fix = "if a CA of your own signed it, set SSL_CERT_FILE to its .pem file in the environment"
    assert untrusted.returncode == 1
    assert f"broker:  {broker.replace('guest:guest', 'guest:**')} unreachable (untrusted " \
        f"certificate); {fix}" in untrusted.stdout.splitlines(), untrusted.stdout  # fmt: skip
    assert f"backend: {redis.url} unreachable (untrusted certificate); {fix}" in (
        untrusted.stdout.splitlines()
    ), untrusted.stdout
    assert f"broker:  {broker.replace('guest:guest', 'guest:**')} ok" in check.stdout
    assert demo.stdout.split() == ["10"]
