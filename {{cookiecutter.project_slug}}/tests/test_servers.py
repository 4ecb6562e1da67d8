"""What a user sees when a server does not answer: one line, why, and the fix."""

import os
import socket
import subprocess
import sys
import threading

import pytest
from kombu.utils.url import as_url, url_to_parts

from {{ cookiecutter.project_slug }} import servers, settings
from {{ cookiecutter.project_slug }}.celery import create_app

PACKAGE = settings.__package__
CLOSED_PORT = "127.0.0.1:1"  # nothing listens on port 1
WORKING = {  # the servers of .env.example, which CI starts
    "CELERY_ENV": "production",
    "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
    "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/0",
}


def production_app(**urls):
    return create_app(settings.load({**WORKING, **urls}))


def run_package(*args, timeout=60, **env):
    return subprocess.run(
        [sys.executable, *args],
        env={**os.environ, **WORKING, **env},
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"amqp://guest:guest@{CLOSED_PORT}//", "connection refused"),
        ("amqp://guest:guest@no-such-host.invalid:5672//", "unknown host"),
    ],
)
def test_a_broker_that_does_not_answer_is_explained(url, why):
    assert servers.broker_problem(production_app(CELERY_BROKER_URL=url)) == why


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"redis://{CLOSED_PORT}/0", "connection refused"),
        ("redis://no-such-host.invalid:6379/0", "unknown host"),
    ],
)
def test_a_backend_that_does_not_answer_is_explained(url, why):
    assert servers.backend_problem(production_app(CELERY_RESULT_BACKEND=url)) == why


def test_check_names_the_stopped_broker_without_its_password():
    done = run_package(
        "-m", f"{PACKAGE}.check", CELERY_BROKER_URL=f"amqp://me:s3cret@{CLOSED_PORT}//"
    )
    assert done.returncode == 1
    assert "s3cret" not in done.stdout + done.stderr
    assert (
        f"broker:  amqp://me:**@{CLOSED_PORT}// unreachable (connection refused); {servers.FIX}"
        in done.stdout.splitlines()
    )


def test_check_names_the_stopped_backend():
    done = run_package("-m", f"{PACKAGE}.check", CELERY_RESULT_BACKEND=f"redis://{CLOSED_PORT}/0")
    assert done.returncode == 1
    assert (
        f"backend: redis://{CLOSED_PORT}/0 unreachable (connection refused); {servers.FIX}"
        in done.stdout.splitlines()
    )


def test_a_worker_without_its_broker_exits_with_one_line():
    url = f"amqp://me:s3cret@{CLOSED_PORT}//"
    done = run_package("-m", "celery", "-A", PACKAGE, "worker", CELERY_BROKER_URL=url)
    assert done.returncode == 1
    assert "s3cret" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == [
        f"ERROR: broker amqp://me:**@{CLOSED_PORT}// unreachable (connection refused); "
        + servers.FIX
    ]
    assert "Traceback" not in done.stderr


@pytest.fixture
def silent_server():
    """host:port of a server that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return  # closed: the test is over

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for connection in accepted:
        connection.close()


@pytest.mark.parametrize(
    ("name", "variable", "url"),
    [
        ("broker", "CELERY_BROKER_URL", "amqp://guest:guest@{}//"),
        ("backend", "CELERY_RESULT_BACKEND", "redis://{}/0"),
    ],
)
def test_a_silent_server_is_given_up_on_within_the_5_s_the_readme_promises(
    silent_server, name, variable, url
):
    url = url.format(silent_server)
    # Past 5 s plus start-up, it would have waited on a socket timeout (redis: 30 s).
    done = run_package("-m", f"{PACKAGE}.check", **{variable: url}, timeout=15)
    assert done.returncode == 1
    line = f"{name + ':':9}{servers.masked(url)} unreachable (timeout); {servers.FIX}"
    assert line in done.stdout.splitlines(), done.stdout + done.stderr


def test_a_worker_with_a_silent_backend_exits_with_one_line(silent_server):
    url = f"redis://{silent_server}/0"
    done = run_package(
        "-m", "celery", "-A", PACKAGE, "worker", CELERY_RESULT_BACKEND=url, timeout=20
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == [f"ERROR: backend {url} unreachable (timeout); {servers.FIX}"]


@pytest.mark.production
def test_bad_rabbitmq_credentials_are_named(production_env):
    broker = url_to_parts(production_env["CELERY_BROKER_URL"])
    url = as_url(*broker[:4], password="not-the-password", path=broker.path)
    assert servers.broker_problem(production_app(CELERY_BROKER_URL=url)) == "bad credentials"
