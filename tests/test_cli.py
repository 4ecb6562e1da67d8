"""The rendered project's command-line plumbing (cli.py, celery_servers.py), as the
Makefile runs it: what a user sees when a server does not answer (one line, why, the
fix), and make demo next to workers that are not the project's."""

import os
import signal
import socket
import sys
import threading
import time

import pytest

from conftest import run, start_in

pytestmark = pytest.mark.slow
PACKAGE = "my_celery_project"  # the default slug: the `baked` project's
CLOSED_PORT = "127.0.0.1:1"  # nothing listens on port 1
WORKING = {  # the servers of .env.example, which CI starts
    "CELERY_ENV": "production",
    "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
    "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/0",
}
FIX = "start the servers (make services-up) or set CELERY_ENV=development in .env"


def cli(project, command, timeout=60, **env):
    """`python -m <package>.cli <command>` in the project, in production unless told."""
    return run(
        [sys.executable, "-m", f"{PACKAGE}.cli", command], project, timeout=timeout,
        check=False, **{**WORKING, **env},
    )  # fmt: skip


def require_servers(project):
    """Skip when RabbitMQ and Redis do not answer; fail instead on CI."""
    done = cli(project, "check")
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(done.stdout + done.stderr)
        pytest.skip("RabbitMQ or Redis does not answer: .ci/services start")


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
    ("variable", "url", "line"),
    [
        (
            "CELERY_BROKER_URL",
            f"amqp://me:s3cret@{CLOSED_PORT}//",
            f"broker:  amqp://me:**@{CLOSED_PORT}// unreachable (connection refused); {FIX}",
        ),
        (
            "CELERY_BROKER_URL",
            "amqp://guest:guest@no-such-host.invalid:5672//",
            "broker:  amqp://guest:**@no-such-host.invalid:5672// unreachable (unknown host); "
            + FIX,
        ),
        (
            "CELERY_RESULT_BACKEND",
            f"redis://{CLOSED_PORT}/0",
            f"backend: redis://{CLOSED_PORT}/0 unreachable (connection refused); {FIX}",
        ),
        (
            "CELERY_RESULT_BACKEND",
            "redis://no-such-host.invalid:6379/0",
            f"backend: redis://no-such-host.invalid:6379/0 unreachable (unknown host); {FIX}",
        ),
    ],
    ids=["broker refused", "broker unknown host", "backend refused", "backend unknown host"],
)
def test_check_names_a_server_that_does_not_answer_why_and_the_fix(baked, variable, url, line):
    done = cli(baked, "check", **{variable: url})
    assert done.returncode == 1
    assert "s3cret" not in done.stdout + done.stderr
    assert line in done.stdout.splitlines(), done.stdout + done.stderr


@pytest.mark.parametrize(
    ("name", "variable", "url"),
    [
        ("broker", "CELERY_BROKER_URL", "amqp://guest:guest@{}//"),
        ("backend", "CELERY_RESULT_BACKEND", "redis://{}/0"),
    ],
)
def test_a_silent_server_is_given_up_on_within_the_5_s_the_readme_promises(
    baked, silent_server, name, variable, url
):
    url = url.format(silent_server)
    # Past 5 s plus start-up, it would have waited on a socket timeout (redis: 30 s).
    done = cli(baked, "check", timeout=15, **{variable: url})
    assert done.returncode == 1
    masked = url.replace("guest:guest", "guest:**")
    line = f"{name + ':':9}{masked} unreachable (timeout); {FIX}"
    assert line in done.stdout.splitlines(), done.stdout + done.stderr


def test_make_worker_stops_with_one_line_when_a_server_does_not_answer(baked, silent_server):
    for variable, url, line in [
        ("CELERY_BROKER_URL", f"amqp://me:s3cret@{CLOSED_PORT}//",
         f"ERROR: broker amqp://me:**@{CLOSED_PORT}// unreachable (connection refused); {FIX}"),
        ("CELERY_RESULT_BACKEND", f"redis://{silent_server}/0",
         f"ERROR: backend redis://{silent_server}/0 unreachable (timeout); {FIX}"),
    ]:  # fmt: skip
        done = cli(baked, "servers", timeout=20, **{variable: url})  # what make worker asks
        assert done.returncode == 1
        assert done.stderr.splitlines() == [line]


def test_bad_rabbitmq_credentials_name_the_variable_to_fix(baked):
    require_servers(baked)
    url = "amqp://guest:not-the-password@127.0.0.1:5672//"
    done = cli(baked, "servers", CELERY_BROKER_URL=url)
    assert done.stderr.splitlines() == [
        "ERROR: broker amqp://guest:**@127.0.0.1:5672// unreachable (bad credentials); "
        "check the user and password in CELERY_BROKER_URL in .env"
    ]


@pytest.mark.parametrize("password", ["not-the-password", "p@ss"])
def test_a_deployed_worker_with_a_refused_login_stops_with_one_line(baked, password):
    """`celery -A <package> worker`, as deployed: Celery's AccessRefused traceback before."""
    require_servers(baked)
    url = f"amqp://guest:{password}@127.0.0.1:5672//"
    command = [sys.executable, "-m", "celery", "-A", PACKAGE, "worker", "--pool=solo"]
    done = run(command, baked, timeout=60, check=False, **{**WORKING, "CELERY_BROKER_URL": url})
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "ERROR: broker amqp://guest:**@127.0.0.1:5672// unreachable (bad credentials); "
        "check the user and password in CELERY_BROKER_URL in .env (write @ : / % in a "
        "password as %40 %3A %2F %25)"
    ]
    assert password not in done.stdout + done.stderr


# A worker of another app on the project's broker, consuming the queue in
# argv[1]: another project's worker (it knows none of our tasks), or, with
# argv[2], a stale one whose tsum takes that many seconds.
FOREIGN_WORKER = f"""
import sys, time
from celery import Celery
from {PACKAGE} import app as ours
app = Celery("foreign")
for name in ("broker_url", "result_backend", "broker_transport_options"):
    app.conf[name] = ours.conf[name]
if sys.argv[2:]:
    @app.task(name="{PACKAGE}.tasks.tsum")
    def tsum(numbers):
        time.sleep(float(sys.argv[2]))
app.worker_main(["worker", "--pool=solo", "--without-mingle", "--hostname=foreign@%h", "-l", "INFO",
                 "-Q", sys.argv[1]])
"""
# make demo, with a shorter wait than its 60 s.
DEMO = f"""
import sys
from {PACKAGE} import cli
cli.TIMEOUT = 2
sys.exit(cli.main("demo"))
"""


def foreign_worker(project, env, queue, *seconds):
    """A foreign worker, once it is ready; stop it with os.killpg."""
    worker = start_in(project, [sys.executable, "-c", FOREIGN_WORKER, queue, *seconds], **env)
    for line in worker.stdout:
        if " ready." in line:
            return worker
    pytest.fail(f"the foreign worker exited with {worker.wait()}")


@pytest.mark.parametrize("environment", ["development", "production"])
def test_demo_ignores_a_worker_that_serves_another_queue(baked, environment, tmp_path):
    env = {"CELERY_ENV": environment, "CELERY_DATA_DIR": str(tmp_path / "data")}
    if environment == "production":
        require_servers(baked)
        env = {**WORKING, **env}
    queue = f"other-{time.monotonic_ns()}"
    worker = foreign_worker(baked, env, queue)
    try:
        done = run([sys.executable, "-m", f"{PACKAGE}.cli", "demo"], baked, check=False, **env)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (0, "10\n", "")


def test_demo_fails_with_one_line_naming_the_worker_to_look_at(baked, tmp_path):
    require_servers(baked)  # Redis, whose results printed a traceback at exit
    queue = f"stale-{time.monotonic_ns()}"
    env = {**WORKING, "CELERY_QUEUE": queue}
    worker = foreign_worker(baked, env, queue, "3")
    try:
        done = run([sys.executable, "-c", DEMO], baked, check=False, **env)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ERROR: the chord failed (TimeoutError: The operation timed out.); "
        f"see the output of foreign@{socket.gethostname()}"
    ]
