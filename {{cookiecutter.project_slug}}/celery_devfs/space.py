"""A full disk: what a task's writes do, and what everyone else's do.

A file written for a running task (its state and result, a chord's counter, a
chord's body sent by its last part, a task sent from inside a task) waits for
space, as Redis with `result_backend_always_retry` and RabbitMQ's disk alarm
make a worker wait: the outcome is kept once there is room again, not lost
with the message already acknowledged. So does a worker's start (Mingle's
broadcast): it serves once there is room. Any other write (`.delay()` from a
shell, a remote-control command) raises the OSError at once, so that a person
sees it.
"""

import errno
import logging
import threading
import time

from celery import signals

logger = logging.getLogger(__name__)
FULL = (errno.ENOSPC, errno.EDQUOT)  # no room left: on the disk, or in the user's quota
LONGEST_WAIT = 1.0  # seconds between tries: the outcome is written within a second of room

_task = threading.local()  # .id: the task this thread runs (threads pool: one per thread)
_starting = []  # [True] from Celery's worker_init to worker_ready, in the worker's process


@signals.task_prerun.connect
def _task_starts(task_id=None, **kwargs):
    _task.id = task_id


@signals.task_postrun.connect  # sent once the result is stored and the chord counted
def _task_ends(**kwargs):
    _task.id = None


@signals.worker_init.connect
def _worker_starts(**kwargs):
    _starting.append(True)


@signals.worker_ready.connect
@signals.worker_process_init.connect  # a pool process: its writes are its tasks'
def _worker_started(**kwargs):
    _starting.clear()


def waiting_for():
    """For what this thread's writes wait for room: a task it runs (between Celery's
    task_prerun and task_postrun), a worker's start, or nothing (None)."""
    task = getattr(_task, "id", None)
    if task:
        return f"task {task}"
    return "the worker's start" if _starting else None


def is_full(exc):
    return isinstance(exc, OSError) and exc.errno in FULL


def write(attempt, what):
    """attempt(); where the disk is full and a task is running, again until it works."""
    waited, pause = False, 0.01
    while True:
        try:
            result = attempt()
        except OSError as exc:
            if not is_full(exc) or waiting_for() is None:
                raise
            if not waited:
                logger.warning(
                    "Disk full (%s) while writing %s for %s: waiting for space",
                    exc.strerror, what, waiting_for(),
                )  # fmt: skip
                waited = True
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_WAIT)
            continue
        if waited:
            logger.warning("Space again: %s written for %s", what, waiting_for())
        return result
