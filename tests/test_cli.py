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


def test_a_queue_left_by_an_older_version_is_one_line_whose_fix_works(baked):
    """Older versions of the project declared its queue classic, on a direct exchange;
    quorum and topic now (settings.py). make check, make demo and a deployed worker
    say it in one line (RabbitMQ's PRECONDITION_FAILED traceback before), and the
    commands in that line clear it."""
    require_servers(baked)
    queue = f"older-{os.getpid()}"
    env = {**WORKING, "CELERY_QUEUE": queue}
    broker = WORKING["CELERY_BROKER_URL"]
    declare = f"""
from kombu import Connection, Exchange, Queue
with Connection("{broker}") as connection:
    Queue("{queue}", Exchange("{queue}", "direct"), "{queue}")(connection.default_channel).declare()
"""
    run([sys.executable, "-c", declare], baked)
    line = (
        f"amqp://guest:**@127.0.0.1:5672// has the project's queue declared otherwise "
        f"(inequivalent arg 'type' for exchange '{queue}': an older version of the project?); "
        "set CELERY_QUEUE to a new name in .env, or delete them once empty: "
        f"celery -A {PACKAGE} amqp queue.delete NAME; celery -A {PACKAGE} amqp "
        "exchange.delete NAME false"
    )
    check = cli(baked, "check", **env)
    assert check.returncode == 1 and f"broker:  {line}" in check.stdout.splitlines()
    assert cli(baked, "servers", **env).stderr.splitlines() == [f"ERROR: broker {line}"]
    command = [sys.executable, "-m", "celery", "-A", PACKAGE, "worker", "--pool=solo"]
    worker = run(command, baked, timeout=60, check=False, **env)
    assert worker.returncode == 1 and worker.stderr.splitlines() == [f"ERROR: broker {line}"]
    for fix in line.split(": ")[-1].split("; "):
        run([sys.executable, "-m", *fix.replace("NAME", queue).split()], baked, **env)
    assert cli(baked, "check", **env).returncode == 0


def test_priorities_that_a_quorum_queue_refuses_are_one_line_naming_the_advice(baked):
    """task_queue_max_priority on production's quorum queue: RabbitMQ refuses the queue."""
    require_servers(baked)
    code = (
        f"from {PACKAGE} import app; import celery_servers; "
        "app.conf.task_queue_max_priority = 10; print(*celery_servers.unreachable(app))"
    )
    env = {**WORKING, "CELERY_QUEUE": f"priorities-{os.getpid()}"}
    assert run([sys.executable, "-c", code], baked, **env).stdout.splitlines() == [
        "broker amqp://guest:**@127.0.0.1:5672// refuses the project's queue (invalid arg "
        f"'x-max-priority' for queue '{env['CELERY_QUEUE']}', not for a quorum queue); "
        "DEPLOY.md (RabbitMQ: quorum queues) says what to set instead"
    ]


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
for name, value in ours.conf.items():  # production's queue and exchange types (quorum, topic)
    if name.startswith("task_") and name.endswith("_type"):
        app.conf[name] = value
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
