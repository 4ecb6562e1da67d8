"""Production's faults, on servers of the test's own (a Redis started and stopped
here, never the one a user runs): what a deployed worker does when one goes away."""

import subprocess
import sys
import time
import uuid

import pytest

from conftest import clean_env, free_port, run

pytestmark = pytest.mark.slow
PACKAGE = "my_celery_project"  # the default slug: the `baked` project's
BROKER = "amqp://guest:guest@127.0.0.1:5672//"  # .ci/services' RabbitMQ, a queue of our own


class PrivateRedis:
    """A redis-server of the test's own on a free port, stopped and started at will."""

    def __init__(self, folder):
        self.port, self.folder, self.process = free_port(), folder, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            ).stdout.strip()
            != "PONG"
        ):
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


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
