"""What test_full_disk runs on a real full disk: `python -m celery_devfs.tests.full_disk
SCENARIO DISK LOG`, in a mount namespace of its own where DISK is a small tmpfs.
Prints what happened as one JSON object."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

from celery import chord
from kombu import Exchange, Queue

from .app import make_app


def fill(disk):
    """Fill the disk; return the file to delete to free it."""
    filler = os.path.join(disk, "filler")
    with open(filler, "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"x" * 4096)
        except OSError:
            pass
    return filler


def start_worker(command, env, log):
    return subprocess.Popen(
        [*command, "--loglevel=INFO"],
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(worker):
    """SIGKILL, pool and all: what is measured here is done, and a warm shutdown can
    take 30 s more when billiard misses a pool process's last READY message."""
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def wait_until(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {condition.__doc__ or condition}")
        time.sleep(0.05)


def callers(disk):
    """Writes from outside a task fail at once, with ENOSPC, and leave nothing behind."""
    app = make_app(dict(DEVFS_TEST_SETUP="devfs", DEVFS_TEST_DATA=disk + "/data"))
    assert app.backend  # made, and its folder checked, while there is room
    fill(disk)
    errors = []
    send = lambda: app.send_task("devfs_tests.add", ([1, 2],))  # noqa: E731
    store = lambda: app.backend.store_result("t", 3, "SUCCESS")  # noqa: E731
    for write in (send, store):
        try:
            write()
        except OSError as exc:
            errors.append(exc.errno)
    left = [p.name for name in ("queue", "results") for p in os.scandir(disk + "/data/" + name)]
    return dict(errors=errors, left=left)


def tasks(disk, log):
    """A task and a chord's last part end while the disk is full; then room comes back."""
    env = dict(os.environ, DEVFS_TEST_SETUP="devfs", DEVFS_TEST_DATA=disk + "/data")
    env["DEVFS_TEST_QUEUE"] = "full-disk"
    app = make_app(env)
    command = [sys.executable, "-m", "celery", "-A", "celery_devfs.tests.app", "worker"]
    worker = start_worker([*command, "--pool=prefork", "--concurrency=3"], env, log)
    try:
        wait_until(lambda: app.control.ping(timeout=0.5))
        plain = app.send_task("devfs_tests.slow_add", ([1, 2], 3))
        slow = app.signature("devfs_tests.slow_add", ([1, 2], 3), immutable=True)
        quick = app.signature("devfs_tests.add", ([3, 4],), immutable=True)
        result = chord([slow, quick], app.signature("devfs_tests.add")).delay()
        slow_part, quick_part = result.parent.results
        wait_until(lambda: plain.state == slow_part.state == "STARTED" and quick_part.ready())
        filler = fill(disk)
        time.sleep(4)  # both slow tasks end meanwhile, on a full disk
        while_full = dict(plain=plain.state, chord=result.state, worker_alive=worker.poll() is None)
        try:
            app.send_task("devfs_tests.add", ([1, 2],))
            while_full["send"] = "sent"
        except OSError as exc:
            while_full["send"] = exc.errno
        os.remove(filler)  # room again
        outcome = dict(plain=plain.get(timeout=30), chord=result.get(timeout=30))
        outcome["still_serves"] = app.send_task("devfs_tests.add", ([20, 22],)).get(timeout=30)
        return dict(while_full=while_full, outcome=outcome)
    finally:
        stop_worker(worker)


def paths(disk, log):
    """A requeue, a consumer, a queue's arguments and bindings, on a full disk."""
    logging.basicConfig(filename=log, level=logging.WARNING)
    app = make_app(dict(DEVFS_TEST_SETUP="devfs", DEVFS_TEST_DATA=disk + "/data"))
    queue_folder = os.path.join(disk, "data", "queue")
    queue = Queue("paths", Exchange("paths"), "paths")
    gone = Queue("gone", Exchange("paths"), "gone")
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        connection.Producer(channel).publish(
            {"n": 1}, routing_key="paths", exchange="paths", declare=[queue]
        )
        gone(channel).declare()  # bound to the exchange while there is room
        message = queue(channel).get()  # claimed by this process
        filler, found = fill(disk), {}
        message.requeue()
        found["requeued"] = [n.endswith(".paths.msg") for n in os.listdir(queue_folder)]
        watched = Queue("watched", expires=60)  # x-expires: its file records it
        watched(channel).declare()
        channel.basic_consume("watched", False, lambda message: None, "a-consumer")
        found["consumers_while_full"] = len(channel.queues.consumers("watched"))
        gone(channel).delete()  # its unbinding: written later too
        os.remove(filler)  # room again
        channel.later.flush()  # what the consumer timer calls each second
        found["consumers"] = len(channel.queues.consumers("watched"))
        file = os.path.join(disk, "data", "control", "watched.queue")
        found["arguments"] = json.loads(open(file).read())["arguments"]
        found["bound"] = [row.queue for row in channel.get_table("paths")]
        message = queue(channel).get()
        found["message"] = message.payload
        message.ack()
    return found


def start(disk, log):
    """A worker started on a full disk waits, and serves once there is room."""
    env = dict(os.environ, DEVFS_TEST_SETUP="devfs", DEVFS_TEST_DATA=disk + "/data")
    app = make_app(env)
    filler = fill(disk)
    command = [sys.executable, "-m", "celery", "-A", "celery_devfs.tests.app", "worker"]
    worker = start_worker([*command, "--concurrency=1"], env, log)
    try:
        time.sleep(5)
        found = dict(alive_while_full=worker.poll() is None)
        os.remove(filler)
        found["result"] = app.send_task("devfs_tests.add", ([20, 22],)).get(timeout=30)
        return found
    finally:
        stop_worker(worker)


BEAT = """
from celery_devfs.tests.app import app
app.conf.beat_schedule = {"add": {"task": "devfs_tests.add", "schedule": 0.5, "args": ([1, 2],)}}
app.conf.beat_sync_every = 1  # write the schedule file at every tick
"""


def beat(disk, log):
    """Beat on a full disk goes on, and sends again once there is room."""
    folder = os.path.dirname(log)
    with open(os.path.join(folder, "beat_app.py"), "w") as module:
        module.write(BEAT)
    env = dict(os.environ, DEVFS_TEST_SETUP="devfs", DEVFS_TEST_DATA=disk + "/data")
    env["PYTHONPATH"] = os.pathsep.join([folder, env.get("PYTHONPATH", "")])
    schedule = f"--schedule={disk}/data/beat-schedule"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "beat_app", "beat", schedule, "--loglevel=INFO"],
        env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    queue = os.path.join(disk, "data", "queue")
    try:
        wait_until(lambda: os.path.isdir(queue) and os.listdir(queue))
        filler = fill(disk)
        time.sleep(3)
        found = dict(alive_while_full=process.poll() is None)
        for name in os.listdir(queue):
            os.remove(os.path.join(queue, name))
        os.remove(filler)
        wait_until(lambda: os.listdir(queue), seconds=10)
        found["sent_again"] = True
        found["alive"] = process.poll() is None
        return found
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    scenario, disk, log = sys.argv[1:4]
    scenarios = dict(callers=callers, tasks=tasks, paths=paths, start=start, beat=beat)
    if scenario == "callers":
        print(json.dumps(callers(disk)))
    else:
        print(json.dumps(scenarios[scenario](disk, log)))
