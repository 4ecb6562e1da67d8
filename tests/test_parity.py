"""Development behaves as production in a user's first week: each test runs the same
code against celery_devfs and against RabbitMQ + Redis, and expects the same outcome."""

import json
import os
import select
import time

import pytest

from conftest import run, start_in, stop_in

pytestmark = pytest.mark.slow
ENVIRONMENTS = ["development", "production"]

# What a user tries in the first week, added to the rendered project's tasks.py.
TASKS = """

import time

from celery.exceptions import SoftTimeLimitExceeded


@shared_task(soft_time_limit=1)
def soft_limited():
    try:
        time.sleep(3)
    except SoftTimeLimitExceeded:
        return "soft caught"
    return "not interrupted"


@shared_task(time_limit=2)  # and no soft limit: the project's runaway limits stay out
def hard_limited():
    time.sleep(5)


@shared_task
def sleeper(seconds):
    time.sleep(seconds)
    return seconds


@shared_task
def started(n):
    return [n, time.time()]


@shared_task(bind=True)
def own_priority(self):
    return self.request.delivery_info.get("priority")


@shared_task(bind=True)
def record(self, path):
    with open(path, "a") as runs:
        runs.write(self.request.delivery_info["routing_key"] + "\\n")
"""

# The client's side of each test: prints what it saw, as JSON.
CLIENT = """
import datetime, json, sys, time
from celery import states
from celery.exceptions import TaskRevokedError, TimeLimitExceeded
from kombu import Exchange, Queue

from parity.celery import app
from parity.tasks import hard_limited, own_priority, record, sleeper, soft_limited, started, tsum

mode = sys.argv[1]
if mode in ("priority-worker", "priority-client", "priority-purge"):
    app.conf.task_queue_max_priority = 10
    app.conf.task_default_queue = "parity-priority"
    app.conf.task_default_queue_type = "classic"  # x-max-priority: DEPLOY.md's advice
if mode in ("routing-worker", "routing-client"):
    # A topic exchange, and a queue named as files could not be before.
    topic = Exchange("parity-topic", type="topic")
    app.conf.task_queues = [
        Queue("parity-pdf", topic, routing_key="pdf.*"),
        Queue("parity-all-pdf", topic, routing_key="pdf.#"),
        Queue("parity urgent/ü:*", topic, routing_key="#.urgent"),
    ]
if mode in ("expiry-worker", "expiry-client"):
    app.conf.result_expires = 5
    app.conf.task_default_queue = "parity-expiry"


def wait_started(result):
    deadline = time.monotonic() + 30
    while result.state != states.STARTED:
        assert time.monotonic() < deadline, "never started"
        time.sleep(0.05)


def outcome(result):
    try:
        return result.get(timeout=30)
    except (TaskRevokedError, TimeLimitExceeded) as exc:
        return [type(exc).__name__, result.state]


seen = {}
if mode == "limits":
    seen["soft"] = soft_limited.delay().get(timeout=30)
    seen["hard"] = outcome(hard_limited.delay())
    seen["priority when sent without"] = own_priority.delay().get(timeout=30)
    running = sleeper.delay(60)
    wait_started(running)
    asked = time.monotonic()
    running.revoke(terminate=True)
    seen["terminated"] = outcome(running)
    seen["terminated within 10 s"] = time.monotonic() - asked < 10
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    seen["expired"] = outcome(tsum.apply_async(([1, 2],), expires=past))
elif mode == "routing-client":
    runs = "routing-runs.txt"
    open(runs, "w").close()
    keys = ["pdf.small", "pdf.big.scan", "png.urgent", "doc.x"]
    for key in keys:
        record.apply_async((runs,), exchange="parity-topic", routing_key=key)
    time.sleep(5)
    lines = open(runs).read().split()
    seen = {key: lines.count(key) for key in keys}
elif mode == "left-send":
    seen["ids"] = [tsum.delay([n, 1]).id for n in range(3)]
elif mode == "left-get":
    seen["results"] = [app.AsyncResult(id).get(timeout=30) for id in sys.argv[2:]]
elif mode == "priority-purge":
    with app.connection_for_write() as connection:
        app.amqp.queues["parity-priority"].bind(connection.default_channel).declare()
    app.control.purge()
elif mode == "priority-client":
    busy = sleeper.delay(2)
    wait_started(busy)
    results = [started.apply_async((n,), priority=1) for n in range(20)]
    results.append(started.apply_async((99,), priority=9))
    runs = sorted((r.get(timeout=60) for r in results), key=lambda run: run[1])
    seen["order"] = [n for n, _ in runs]
elif mode == "expiry-client":
    result = tsum.delay([1, 2])
    seen["result"] = result.get(timeout=30)
    stored = time.monotonic()
    while app.backend.get_task_meta(result.id, cache=False)["status"] != states.PENDING:
        time.sleep(0.5)
        if time.monotonic() - stored > 120:
            break
    seen["gone after"] = round(time.monotonic() - stored)
elif mode == "kombu":
    with app.connection_for_write() as connection:
        channel = connection.channel()
        queue = Queue("parity-kombu", auto_delete=True)(channel)
        queue.declare()
        queue.purge()
        seen["priorities"] = []
        for priority in (None, 0, 3):  # kombu's Producer.publish says 0 by default
            connection.Producer(channel).publish({}, routing_key="parity-kombu", priority=priority)
            while (message := queue.get(no_ack=True)) is None:
                time.sleep(0.05)
            seen["priorities"].append(message.properties.get("priority"))
        try:
            Queue("parity-kombu", auto_delete=True, max_priority=5)(channel).declare()
        except Exception as exc:
            said = "inequivalent arg 'x-max-priority'" in str(exc)
            seen["redeclared"] = [type(exc).__name__, said]
elif mode.endswith("-worker"):
    app.worker_main(["worker", "-c", "1", "-l", "INFO", "--without-mingle", "--without-gossip"])
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def project(cookies_session):
    result = cookies_session.bake(extra_context={"project_name": "Parity"})
    assert result.exit_code == 0, result.exception
    path = result.project_path
    tasks = path / "parity" / "tasks.py"
    tasks.write_text(tasks.read_text() + TASKS)
    (path / "client.py").write_text(CLIENT)
    run(["make", "install"], path)
    return path


def environment(project, name):
    env = {"CELERY_ENV": name}
    if name == "production":
        done = run(["make", "check"], project, check=False, **env)
        if done.returncode != 0:
            if os.environ.get("CI") == "true":
                pytest.fail(done.stdout + done.stderr)
            pytest.skip("RabbitMQ or Redis does not answer: .ci/services start")
    return env


def client(project, mode, *args, **env):
    done = run([project / ".venv/bin/python", "client.py", mode, *args], project, **env)
    return json.loads(done.stdout.splitlines()[-1])


def output_until(process, text, timeout):
    """What a start_in process printed, up to a line holding `text` (or `timeout` s),
    read from its pipe's descriptor (its text wrapper stays unread, for stop_in)."""
    said, deadline, fd = b"", time.monotonic() + timeout, process.stdout.fileno()
    while text.encode() not in said and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            if not (chunk := os.read(fd, 65536)):
                break  # it ended
            said += chunk
    return said.decode(errors="replace")


def client_beside_worker(project, mode, **env):
    """The client's mode-client, beside a worker of its mode-worker: (what it saw, the
    worker's output)."""
    command = [".venv/bin/python", "client.py", f"{mode}-worker"]
    worker = started_worker(project, command, **env)
    try:
        seen = client(project, f"{mode}-client", **env)
    finally:
        output = stop_in(worker)
    return seen, output


def started_worker(project, command, **env):
    """A worker started with `command`, once it serves tasks."""
    worker = start_in(project, command, **env)
    deadline = time.monotonic() + 60
    while True:
        ping = [project / ".venv/bin/python", "-c", "from parity.celery import app; "
                "import sys; sys.exit(not app.control.ping(timeout=0.5))"]  # fmt: skip
        if run(ping, project, check=False, **env).returncode == 0:
            return worker
        if worker.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the worker did not start:\n{stop_in(worker)}")


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_make_worker_applies_time_limits_terminates_and_revokes_expired_tasks(project, name):
    env = environment(project, name)
    worker = started_worker(project, ["make", "worker"], **env)
    try:
        seen = client(project, "limits", **env)
    finally:
        output = stop_in(worker)
    assert seen == {
        "soft": "soft caught",
        "hard": ["TimeLimitExceeded", "FAILURE"],
        "priority when sent without": 0,  # kombu's publish says 0 when Celery gives none
        "terminated": ["TaskRevokedError", "REVOKED"],
        "terminated within 10 s": True,
        "expired": ["TaskRevokedError", "REVOKED"],
    }, output
    assert "Discarding revoked task" in output


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_a_queue_with_a_max_priority_runs_the_highest_priority_first(project, name):
    env = environment(project, name)
    client(project, "priority-purge", **env)
    seen, output = client_beside_worker(project, "priority", **env)
    assert seen["order"] == [99, *range(20)], output


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_results_expire_without_beat(project, name):
    env = environment(project, name)
    seen, output = client_beside_worker(project, "expiry", **env)
    print(f"{name}: a result kept for 5 s was gone after {seen['gone after']} s")
    assert seen["result"] == 3
    assert 4 <= seen["gone after"] <= 5 + 60, output  # Redis: at its TTL; files: a look later


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_no_priority_reads_as_none_and_other_queue_arguments_fail(project, name):
    env = environment(project, name)
    assert client(project, "kombu", **env) == {
        "priorities": [None, 0, 3],
        "redeclared": ["PreconditionFailed", True],
    }


def test_make_clean_refuses_while_a_worker_runs_and_the_worker_goes_on(project):
    worker = started_worker(project, ["make", "worker"])
    try:
        done = run(["make", "clean"], project, check=False)
        assert done.returncode != 0
        assert "is in use by process" in done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        assert "OK" in run(["make", "status"], project).stdout  # still answers
        assert client(project, "kombu")["priorities"] == [None, 0, 3]  # still works
    finally:
        output = stop_in(worker)
    assert run(["make", "clean"], project).returncode == 0, output
    assert not (project / ".celery").exists()


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_a_topic_exchange_routes_to_a_real_worker_whatever_the_queue_names(project, name):
    env = environment(project, name)
    seen, output = client_beside_worker(project, "routing", **env)
    # pdf.small: pdf.* and pdf.#; pdf.big.scan: pdf.#; png.urgent: #.urgent; doc.x: none
    assert seen == {"pdf.small": 2, "pdf.big.scan": 1, "png.urgent": 1, "doc.x": 0}, output


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_a_second_make_worker_stops_with_one_line_and_the_first_goes_on(project, name):
    env = environment(project, name)
    first = started_worker(project, ["make", "worker"], **env)
    said = ""
    try:
        second = start_in(project, ["make", "worker"], **env)
        try:
            said = output_until(second, "is running already", timeout=60)
            assert "OK" in run(["make", "status"], project, **env).stdout  # the first answers
        finally:
            # Production's make worker has ended; development's watches for a change.
            said += stop_in(second) if second.poll() is None else second.communicate()[0]
    finally:
        output = stop_in(first)
    line = next((x for x in said.splitlines() if "is running already" in x), None)
    assert line and line.startswith("ERROR: a worker named celery@"), said
    assert "Traceback" not in said + output, said + output


def test_tasks_left_by_development_are_told_and_moved_to_production(project, tmp_path):
    data = {"CELERY_DATA_DIR": str(tmp_path / "data")}
    ids = client(project, "left-send", **data)["ids"]  # no worker: they wait in the files
    env = {**environment(project, "production"), **data}
    run(["make", "purge"], project, **env)
    said = run(["make", "check"], project, **env).stdout
    assert f"development left 3 tasks and 0 results in {data['CELERY_DATA_DIR']}" in said, said
    assert "make migrate" in said
    moved = run(["make", "migrate"], project, **env).stdout
    assert "moved 3 tasks of queue parity" in moved, moved
    assert "development left" not in run(["make", "check"], project, **env).stdout
    worker = started_worker(project, ["make", "worker"], **env)
    try:
        seen = client(project, "left-get", *ids, **env)
    finally:
        output = stop_in(worker)
    assert seen["results"] == [1, 2, 3], output
