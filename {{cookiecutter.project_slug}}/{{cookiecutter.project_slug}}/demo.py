"""The sample chord, what `make demo` runs.

chord([tsum.si([1, 2]), tsum.si([3, 4])], tsum.s()) adds 1+2 and 3+4 in
parallel, then adds the two sums: it prints 10. When no worker consumes the
project's queue, it starts one for the run and stops it afterwards.
"""

import contextlib
import os
import subprocess
import sys

from celery import chord
from celery.exceptions import TimeoutError as CeleryTimeoutError

from . import app, servers, settings
from .tasks import tsum

TIMEOUT = 60  # seconds to wait for the chord


def sample_chord():
    return chord([tsum.si([1, 2]), tsum.si([3, 4])], tsum.s())


def workers_on(queue):
    """Names of the running workers that consume `queue`: a worker of another
    project on the same RabbitMQ answers a ping too, but never runs our tasks."""
    replies = app.control.inspect(timeout=1.0).active_queues() or {}
    return sorted(name for name, found in replies.items() if queue in {q["name"] for q in found})


@contextlib.contextmanager
def worker_running(log_file):
    """Use the workers on the project's queue, or run one until the block ends.
    Yields where to look when the chord gives no result."""
    running = workers_on(app.conf.task_default_queue)
    if running:
        yield f"the output of {', '.join(running)}"
        return
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # results: owner only
    with os.fdopen(fd, "ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", app.main, "worker", "--pool=solo"]
            + ["--loglevel=INFO"],
            cwd=settings.PROJECT_ROOT,
            stdout=log,
            stderr=log,
        )
    try:
        yield str(log_file)
    finally:
        worker.terminate()  # SIGTERM: a warm shutdown
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def run():
    """The chord's result, or the one line that says why there is none."""
    for line in servers.unreachable(app):
        return f"ERROR: {line}"
    log_file = settings.make_data_folders(settings.read_environment()) / "demo-worker.log"
    with worker_running(log_file) as where:
        result = sample_chord().delay()
        try:
            return result.get(timeout=TIMEOUT)
        except CeleryTimeoutError:
            return f"ERROR: the chord gave no result within {TIMEOUT} s; see {where}"
        except Exception as exc:  # the task's own error, raised here by get()
            return f"ERROR: the chord failed with {type(exc).__name__}: {exc}; see {where}"
        finally:
            # Redis: unsubscribe from the results now. Left to AsyncResult.__del__
            # at interpreter exit, the unsubscribe fails and prints a traceback.
            consumer = getattr(app.backend, "result_consumer", None)
            for task_id in [result.id, *(part.id for part in result.parent.results)]:
                if consumer:
                    consumer.cancel_for(task_id)


def main():
    outcome = run()
    if isinstance(outcome, str):
        sys.exit(outcome)
    print(outcome)


if __name__ == "__main__":
    main()
