"""The sample chord, what `make demo` runs.

chord([tsum.si([1, 2]), tsum.si([3, 4])], tsum.s()) adds 1+2 and 3+4 in
parallel, then adds the two sums: it prints 10. When no worker answers, it
starts one for the run and stops it afterwards.
"""

import contextlib
import subprocess
import sys

from celery import chord
from celery.exceptions import TimeoutError as CeleryTimeoutError

from . import app, servers, settings
from .tasks import tsum

TIMEOUT = 60  # seconds to wait for the chord


def sample_chord():
    return chord([tsum.si([1, 2]), tsum.si([3, 4])], tsum.s())


@contextlib.contextmanager
def worker_running(log_file):
    """Use the worker that answers a ping, or run one until the block ends."""
    if app.control.ping(timeout=1.0):
        yield
        return
    with open(log_file, "ab") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app.main,
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
            ],
            cwd=settings.PROJECT_ROOT,
            stdout=log,
            stderr=log,
        )
    try:
        yield
    finally:
        worker.terminate()  # SIGTERM: a warm shutdown
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def main():
    for line in servers.unreachable(app):
        sys.exit(f"ERROR: {line}")
    log_file = settings.data_dir(settings.read_environment()) / "demo-worker.log"
    log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with worker_running(log_file):
        try:
            result = sample_chord().delay().get(timeout=TIMEOUT)
        except CeleryTimeoutError:
            sys.exit(f"ERROR: the chord gave no result within {TIMEOUT} s; see {log_file}")
    print(result)


if __name__ == "__main__":
    main()
