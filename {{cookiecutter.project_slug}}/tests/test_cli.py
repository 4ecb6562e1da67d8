"""cli.py: what a user sees when a server does not answer (one line, why, the fix),
and make demo next to workers that are not the project's."""

import os
import socket
import subprocess
import sys
import threading

import pytest
from conftest import wait_until_ready
from kombu.utils.url import as_url, url_to_parts

from {{ cookiecutter.project_slug }} import cli, settings
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
    assert cli.servers(production_app(CELERY_BROKER_URL=url))[0][2] == why


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"redis://{CLOSED_PORT}/0", "connection refused"),
        ("redis://no-such-host.invalid:6379/0", "unknown host"),
    ],
)
def test_a_backend_that_does_not_answer_is_explained(url, why):
    assert cli.servers(production_app(CELERY_RESULT_BACKEND=url))[1][2] == why


def test_check_names_the_stopped_broker_without_its_password():
    done = run_package(
        "-m", f"{PACKAGE}.cli", "check", CELERY_BROKER_URL=f"amqp://me:s3cret@{CLOSED_PORT}//"
    )
    assert done.returncode == 1
    assert "s3cret" not in done.stdout + done.stderr
    assert (
        f"broker:  amqp://me:**@{CLOSED_PORT}// unreachable (connection refused); {cli.FIX}"
        in done.stdout.splitlines()
    )


def test_check_names_the_stopped_backend():
    done = run_package(
        "-m", f"{PACKAGE}.cli", "check", CELERY_RESULT_BACKEND=f"redis://{CLOSED_PORT}/0"
    )
    assert done.returncode == 1
    assert (
        f"backend: redis://{CLOSED_PORT}/0 unreachable (connection refused); {cli.FIX}"
        in done.stdout.splitlines()
    )


def test_make_worker_without_its_broker_exits_with_one_line():
    url = f"amqp://me:s3cret@{CLOSED_PORT}//"
    done = run_package("-m", f"{PACKAGE}.cli", "servers", CELERY_BROKER_URL=url)
    assert done.returncode == 1
    assert "s3cret" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == [
        f"ERROR: broker amqp://me:**@{CLOSED_PORT}// unreachable (connection refused); " + cli.FIX
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
    done = run_package("-m", f"{PACKAGE}.cli", "check", **{variable: url}, timeout=15)
    assert done.returncode == 1
    line = f"{name + ':':9}{settings.masked(url)} unreachable (timeout); {cli.FIX}"
    assert line in done.stdout.splitlines(), done.stdout + done.stderr


def test_make_worker_with_a_silent_backend_exits_with_one_line(silent_server):
    url = f"redis://{silent_server}/0"
    done = run_package("-m", f"{PACKAGE}.cli", "servers", CELERY_RESULT_BACKEND=url, timeout=20)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == [f"ERROR: backend {url} unreachable (timeout); {cli.FIX}"]


@pytest.mark.production
def test_bad_rabbitmq_credentials_are_named(production_env):
    broker = url_to_parts(production_env["CELERY_BROKER_URL"])
    url = as_url(*broker[:4], password="not-the-password", path=broker.path)
    assert cli.unreachable(production_app(CELERY_BROKER_URL=url)) == [
        f"broker {settings.masked(url)} unreachable (bad credentials); "
        "check the user and password in CELERY_BROKER_URL in .env"
    ]


# A worker of another app on the project's broker, consuming the queue in
# argv[1]: another project's worker (it knows none of our tasks), or, with
# argv[2], a stale one whose tsum takes that many seconds.
FOREIGN_WORKER = """
import sys, time
from celery import Celery
from {package} import app as ours
app = Celery("foreign")
for name in ("broker_url", "result_backend", "broker_transport_options"):
    app.conf[name] = ours.conf[name]
if sys.argv[2:]:
    @app.task(name="{package}.tasks.tsum")
    def tsum(numbers):
        time.sleep(float(sys.argv[2]))
app.worker_main(["worker", "--pool=solo", "--hostname=foreign@%h", "-Q", sys.argv[1]])
"""
# make demo, with a shorter wait than its 60 s.
DEMO = f"""
import sys
from {PACKAGE} import cli
cli.TIMEOUT = 2
sys.exit(cli.main("demo"))
"""


def run_demo(env, code=None):
    command = ["-c", code] if code else ["-m", f"{PACKAGE}.cli", "demo"]
    return subprocess.run(
        [sys.executable, *command],
        env=env,
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.parametrize("setup", ["development", "production"])
def test_demo_ignores_a_worker_that_serves_another_queue(setup, setup_for, spawn, tmp_path):
    env, app = setup_for(setup)
    other_env, _ = setup_for(setup)
    other_env["CELERY_DATA_DIR"] = env["CELERY_DATA_DIR"]  # same broker, another queue
    code = FOREIGN_WORKER.format(package=PACKAGE)
    log = tmp_path / "foreign.log"
    worker = spawn(["-c", code, other_env["CELERY_QUEUE"]], other_env, log=open(log, "w"))
    wait_until_ready(app, worker, log)
    done = run_demo(env)
    assert (done.returncode, done.stdout) == (0, "10\n"), done.stderr
    assert done.stderr == ""


def test_demo_fails_with_one_line_naming_the_worker_to_look_at(setup_for, spawn, tmp_path):
    env, app = setup_for("production")  # Redis, whose results printed a traceback at exit
    log = tmp_path / "foreign.log"
    code = FOREIGN_WORKER.format(package=PACKAGE)
    worker = spawn(["-c", code, env["CELERY_QUEUE"], "3"], env, log=open(log, "w"))
    wait_until_ready(app, worker, log)
    done = run_demo(env, DEMO)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ERROR: the chord failed (TimeoutError: The operation timed out.); "
        f"see the output of foreign@{socket.gethostname()}"
    ]
