"""Production's faults, on servers of the test's own (a Redis started and stopped
here, never the one a user runs): what a deployed worker does when one goes away."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from conftest import clean_env, free_port, run

pytestmark = pytest.mark.slow
PACKAGE = "my_celery_project"  # the default slug: the `baked` project's
BROKER = "amqp://guest:guest@127.0.0.1:5672//"  # .ci/services' RabbitMQ, a queue of our own


class PrivateRedis:
    """A redis-server of the test's own on a free port, stopped and started at will;
    with `certs` (a folder made by tls_certificates), on TLS only."""

    def __init__(self, folder, certs=None):
        self.port, self.folder, self.process, self.certs = free_port(), folder, None, certs
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.cli = ["redis-cli", "-p", str(self.port)]
        if certs:
            self.url = f"rediss://localhost:{self.port}/0?ssl_cert_reqs=required"
            self.cli[1:1] = ["--tls", "--cacert", str(certs / "ca.pem")]

    def start(self):
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        if self.certs:
            command[-1:] = ["0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            files = {"cert": "server.pem", "key": "server.key", "ca-cert": "ca.pem"}
            for name, file in files.items():
                command += [f"--tls-{name}-file", str(self.certs / file)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while (
            subprocess.run([*self.cli, "ping"], capture_output=True, text=True).stdout.strip()
            != "PONG"
        ):
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


class PrivateRabbit:
    """A RabbitMQ node of the test's own (its own name, ports and data), as .ci/services
    starts the shared one: stopped and started at will, killed by PID at the end."""

    BIN = Path("/usr/lib/rabbitmq/bin")

    def __init__(self, folder, config="[].", port=None):
        self.port, dist, self.folder = port or free_port(), free_port(), folder
        (folder / "advanced.config").write_text(config)
        self.name = f"faults{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.env = {
            **os.environ,
            "HOME": str(folder),  # its Erlang cookie, for rabbitmqctl too
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(folder / "pid"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
        }
        log = open(folder / "server.log", "w")
        self.process = subprocess.Popen(
            [self.BIN / "rabbitmq-server"], env=self.env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 120  # await_startup fails until the node answers
        while self.ctl("await_startup", check=False).returncode != 0:
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.kill()
                pytest.fail(f"RabbitMQ node {self.name} did not start: {folder / 'log'}")
            time.sleep(0.5)

    def ctl(self, *args, check=True):
        command = [self.BIN / "rabbitmqctl", "-n", self.name, *args]
        return subprocess.run(command, env=self.env, check=check, capture_output=True, timeout=120)

    def kill(self):
        # The Erlang VM's own PID, read before the start script is stopped: the VM
        # deletes its PID file as it ends (CI once read it as it went).
        try:
            pid = (self.folder / "pid").read_text().strip()
        except FileNotFoundError:  # not up yet, or already gone
            pid = None
        self.process.terminate()
        if pid:
            subprocess.run(["kill", "-9", pid], capture_output=True)
        self.process.wait(timeout=60)


@pytest.fixture
def rabbit(tmp_path, request):
    """A private node; a test marked rabbitmq_config("...") gives it that advanced.config."""
    if not PrivateRabbit.BIN.exists():
        pytest.fail("RabbitMQ is not installed: apt-get install rabbitmq-server (.ci/run does)")
    marker = request.node.get_closest_marker("rabbitmq_config")
    node = PrivateRabbit(tmp_path, *marker.args if marker else ())
    yield node
    node.kill()


@pytest.fixture
def redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


SEND = """
import os, sys
from {package}.celery import create_app
from {package} import settings
config = {{**settings.load(), "result_backend": "disabled://"}}  # sends only: Redis is down
os.environ.pop("CELERY_RESULT_BACKEND")  # Celery lets it win over the configuration
app = create_app(config)
print(*[app.send_task("{package}.tasks.tsum", ([i, 1],)).id for i in range(int(sys.argv[1]))])
"""
READ = """
import sys, time
from celery.result import AsyncResult
from {package} import app
ids, started = sys.argv[1:], time.monotonic()
values = [AsyncResult(task_id).get(timeout=60) for task_id in ids]
states = {{AsyncResult(task_id).state for task_id in ids}}
print(time.monotonic() - started, *states, *values)
"""


def delete_queue(project, env):
    code = f"from {PACKAGE} import app; app.connection().default_channel.queue_delete("
    run([sys.executable, "-c", f"{code}{env['CELERY_QUEUE']!r})"], project, check=False, **env)


def test_results_are_stored_once_redis_is_back_after_30_s(baked, redis, tmp_path):
    """Redis goes away for 30 s while the worker runs tasks: each result is stored as
    SUCCESS once it is back (Celery's 10 quick tries stored FAILUREs), within seconds."""
    env = {"CELERY_ENV": "production", "CELERY_BROKER_URL": BROKER}
    env.update(CELERY_RESULT_BACKEND=redis.url, CELERY_QUEUE=f"faults-{uuid.uuid4().hex[:8]}")
    command = [sys.executable, "-m", "celery", "-A", PACKAGE, "worker", "--concurrency=2"]
    log = tmp_path / "worker.log"  # a file: a traceback per retry would fill a pipe
    with open(log, "w") as out:
        worker = subprocess.Popen(command, cwd=baked, env=clean_env(**env), stdout=out, stderr=out)
    try:
        ping = f"from {PACKAGE} import app; assert app.control.ping(timeout=1)"
        deadline = time.monotonic() + 60
        while run([sys.executable, "-c", ping], baked, check=False, **env).returncode:
            assert time.monotonic() < deadline, "the worker did not answer within 60 s"
        redis.stop()
        code = SEND.format(package=PACKAGE)
        ids = run([sys.executable, "-c", code, "20"], baked, **env).stdout.split()
        time.sleep(30)
        redis.start()
        back = time.monotonic()
        code = READ.format(package=PACKAGE)
        found = run([sys.executable, "-c", code, *ids], baked, timeout=120, **env).stdout.split()
        print(f"all 20 results read {time.monotonic() - back:.1f} s after Redis was back")
        assert found[1:] == ["SUCCESS"] + [str(i + 1) for i in range(20)]
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        delete_queue(baked, env)
    assert "BackendStoreError" not in log.read_text(), log.read_text()[-3000:]


# A web server's request loop: .delay() every 10 ms for `seconds`; prints which calls
# returned (their task ids) and what the others raised.
PRODUCER = """
import json, sys, time
from {package}.tasks import tsum
returned, raised, end = [], {{}}, time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    try:
        returned.append(tsum.delay([len(returned), 1]).id)
    except Exception as exc:
        name = f"{{type(exc).__module__}}.{{type(exc).__name__}}"
        raised[name] = raised.get(name, 0) + 1
    time.sleep(0.01)
print(json.dumps({{"returned": returned, "raised": raised}}))
"""


def test_a_delay_that_returns_means_rabbitmq_has_the_task_and_work_resumes_at_once(
    baked, rabbit, tmp_path
):
    """RabbitMQ stopped for 20 s under a producer: each .delay() either returns, and its
    task runs, or raises kombu's OperationalError (without publisher confirms, one
    returned and its task never ran); the worker tries again every 2 s at most, so it
    is back within seconds however long the outage (kombu's own waits: 2, 4, 6 ... 30 s;
    after 20 s down, its next try was 10 s after RabbitMQ's return)."""
    env = {"CELERY_ENV": "production", "CELERY_BROKER_URL": rabbit.url}
    env.update(CELERY_RESULT_BACKEND="redis://127.0.0.1:6379/0", CELERY_QUEUE="faults")
    command = [sys.executable, "-m", "celery", "-A", PACKAGE, "worker", "-c", "2", "-l", "INFO"]
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(command, cwd=baked, env=clean_env(**env), stdout=out, stderr=out)
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER.format(package=PACKAGE), "35"],
        cwd=baked, env=clean_env(**env), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(5)
        rabbit.ctl("stop_app")
        time.sleep(20)
        rabbit.ctl("start_app")
        back, back_at = time.monotonic(), datetime.now()
        found = json.loads(producer.communicate(timeout=120)[0])
        code = READ.format(package=PACKAGE)
        read = run([sys.executable, "-c", code, *found["returned"]], baked, timeout=180, **env)
        print(
            f"{len(found['returned'])} returned, raised {found['raised']}; all read "
            f"{time.monotonic() - back:.1f} s after RabbitMQ was back"
        )
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    values = read.stdout.split()[1:]
    assert values[0] == "SUCCESS" and len(values) == len(found["returned"]) + 1
    assert set(found["raised"]) <= {"kombu.exceptions.OperationalError"}, found["raised"]
    assert sum(found["raised"].values()) > 0  # the outage was seen
    text = log.read_text()
    waits = [float(s) for s in re.findall(r"Trying again in ([\d.]+) seconds", text)]
    connected = re.findall(r"\[([\d-]+ [\d:]+,\d+): INFO/MainProcess\] Connected to amqp", text)
    resumed = datetime.strptime(connected[-1], "%Y-%m-%d %H:%M:%S,%f") - back_at
    print(f"worker's waits between tries: {waits} s; back {resumed.total_seconds():.1f} s after")
    assert len(waits) >= 5 and max(waits) <= 2, text[-3000:]


# RabbitMQ's consumer timeout (30 min) as 5 s, checked each second (each minute); its
# largest message as RabbitMQ 4's (docker-compose.yml's), 16 MiB (3.x: 128 MiB).
RABBITMQ_4_LIMITS = (
    "[{rabbit, [{consumer_timeout, 5000}, {channel_tick_interval, 1000},"
    " {max_message_size, 16777216}]}]."
)


@pytest.mark.rabbitmq_config(RABBITMQ_4_LIMITS)
def test_long_countdowns_and_large_arguments_within_rabbitmqs_limits(baked, rabbit, tmp_path):
    """A countdown longer than RabbitMQ's consumer timeout: Celery's worker would hold
    the message unacknowledged until then, and RabbitMQ closes its channel (the worker
    dies: PreconditionFailed). On quorum queues Celery delays it in RabbitMQ itself
    (native delayed delivery): the worker never holds it, and runs it when due.
    An argument over RabbitMQ's largest message: .delay() raises RabbitMQ's own
    PreconditionFailed (publisher confirms; before, it returned and the task stayed
    PENDING), and the next .delay() works."""
    env = {"CELERY_ENV": "production", "CELERY_BROKER_URL": rabbit.url}
    env.update(CELERY_RESULT_BACKEND="redis://127.0.0.1:6379/0", CELERY_QUEUE="later")
    command = [sys.executable, "-m", "celery", "-A", PACKAGE, "worker", "--concurrency=2"]
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(command, cwd=baked, env=clean_env(**env), stdout=out, stderr=out)
    code = f"""
import time
from {PACKAGE}.tasks import tsum
started = time.monotonic()
later = tsum.apply_async(([20, 1],), countdown=20)
try:
    tsum.delay(["x" * 20_000_000])
except Exception as exc:
    print(type(exc).__name__, "size" in str(exc), tsum.delay([2, 3]).get(timeout=30))
print(later.get(timeout=90), time.monotonic() - started)
"""
    try:
        done = run([sys.executable, "-c", code], baked, timeout=120, **env).stdout.splitlines()
        alive = worker.poll() is None
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    value, waited = done[-1].split()
    print(f"ran {float(waited):.1f} s after .apply_async(countdown=20); 20 MB: {done[0]}")
    assert done[0] == "PreconditionFailed True 5"
    assert value == "21" and float(waited) >= 19, log.read_text()[-3000:]
    assert alive and "PreconditionFailed" not in log.read_text(), log.read_text()[-3000:]


# A task that takes `seconds`, on the project's app: what the worker of
# test_a_stopped_worker_ends_its_running_tasks runs (the project has tsum only).
SLOW = f"""
import time
from {PACKAGE} import app

@app.task(name="slow")
def slow(seconds):
    time.sleep(seconds)
    return seconds
"""


def test_a_stopped_worker_ends_its_running_tasks_and_none_runs_twice(baked, tmp_path):
    """SIGTERM (docker compose stop, systemctl stop) to a worker running two 8 s tasks:
    it takes no more, ends both, and exits 0; neither runs again (with Docker's 10 s
    grace, a longer task was killed and run again from the start: DEPLOY.md's 400 s)."""
    (tmp_path / "slow.py").write_text(SLOW)
    env = {"CELERY_ENV": "production", "CELERY_BROKER_URL": BROKER}
    env.update(CELERY_RESULT_BACKEND="redis://127.0.0.1:6379/0", CELERY_QUEUE=f"stop-{os.getpid()}")
    env["PYTHONPATH"] = str(tmp_path)
    command = [sys.executable, "-m", "celery", "-A", "slow", "worker", "-c", "2", "-l", "INFO"]
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(command, cwd=baked, env=clean_env(**env), stdout=out, stderr=out)
    code = """
import sys, time
from slow import app, slow
results = [slow.delay(8) for _ in range(2)]
while any(r.state != "STARTED" for r in results):
    time.sleep(0.1)
print(*[r.id for r in results], flush=True)
sys.stdin.read()  # the worker is stopped now
print(*[r.get(timeout=60) for r in results])
"""
    client = subprocess.Popen(
        [sys.executable, "-c", code], cwd=baked, env=clean_env(**env), text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        ids = client.stdout.readline().split()
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
        stopped = time.monotonic() - started
        values = client.communicate("", timeout=60)[0].split()
    finally:
        worker.kill()
        client.kill()
        delete_queue(baked, env)
    text = log.read_text()
    print(f"the worker stopped {stopped:.1f} s after SIGTERM")
    assert code == 0 and values == ["8", "8"], text[-3000:]
    assert all(text.count(f"[{task_id}] received") == 1 for task_id in ids), text[-3000:]


def test_a_worker_started_before_its_broker_serves_within_seconds_of_it(baked, tmp_path):
    """docker compose's depends_on aside, a worker may start first (a reboot, systemd):
    it waits, trying every 2 s, and serves as soon as RabbitMQ is up."""
    port = free_port()
    env = {
        "CELERY_ENV": "production",
        "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{port}//",
    }
    env.update(CELERY_RESULT_BACKEND="redis://127.0.0.1:6379/0", CELERY_QUEUE="early")
    command = [sys.executable, "-m", "celery", "-A", PACKAGE, "worker", "-c", "2", "-l", "INFO"]
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(command, cwd=baked, env=clean_env(**env), stdout=out, stderr=out)
    node = None
    try:
        time.sleep(4)  # the worker tries, and waits (after 1 s, then 2 s)
        node = PrivateRabbit(tmp_path, port=port)
        up = datetime.now()
        code = f"from {PACKAGE}.tasks import tsum; print(tsum.delay([4, 5]).get(timeout=60))"
        value = run([sys.executable, "-c", code], baked, timeout=90, **env).stdout.strip()
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        if node:
            node.kill()
    text = log.read_text()
    waits = [float(s) for s in re.findall(r"Trying again in ([\d.]+) seconds?", text)]
    connected = re.findall(r"\[([\d-]+ [\d:]+,\d+): INFO/MainProcess\] Connected to amqp", text)
    late = datetime.strptime(connected[0], "%Y-%m-%d %H:%M:%S,%f") - up
    print(f"waits between tries {waits} s; connected {late.total_seconds():.1f} s after the node")
    assert value == "9" and waits and max(waits) <= 2, text[-3000:]
