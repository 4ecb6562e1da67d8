"""Who is alive (owners.py): the owner files' lives, then real workers in Linux
namespaces: a new hostname (macOS on each network, a container at each `up`) and PID
namespaces (containers, a Flatpak IDE's terminal) on one data folder. unshare needs
root: CI runs those as root; elsewhere they skip (claims by lock: test_claims.py)."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from celery_devfs import owners
from celery_devfs.testing import ROOT

from .conftest import WORKER, wait_until

in_linux_namespaces = pytest.mark.skipif(
    not (sys.platform == "linux" and os.geteuid() == 0 and shutil.which("unshare")),
    reason="needs Linux namespaces: root and unshare (the template's CI runs it)",
)


# Takes an owner token in argv[1] and prints it; with argv[2] "fork", forks a child
# that outlives it (a pool process); then waits to be killed, or ends at once.
OWNER = """
import os, sys, time
from celery_devfs import owners
print(owners.token(sys.argv[1]), flush=True)
if sys.argv[2] == "fork" and os.fork() == 0:
    time.sleep(60)
if sys.argv[2] != "end":
    time.sleep(60)
"""


def owner(control, how):
    process = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(control), how], cwd=ROOT, stdout=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    return process, process.stdout.readline().strip()


def test_owner_files_go_with_their_owners(tmp_path, monkeypatch):
    """One that ends cleanly deletes its file; a killed one's is deleted by the next
    look (sweep, once a minute, or a look at its claims); a forked child, as a pool
    process, does not keep its parent alive."""
    control = tmp_path / "control"
    monkeypatch.setattr(owners, "_swept", {})
    ended, ended_token = owner(control, "end")
    ended.wait()
    killed, killed_token = owner(control, "wait")
    parent, parent_token = owner(control, "fork")
    files = control / owners.FOLDER
    assert sorted(os.listdir(files)) == sorted([killed_token, parent_token])  # not ended's
    assert owners.alive(control, killed_token) and owners.alive(control, parent_token)
    for process in (killed, parent):
        os.kill(process.pid, signal.SIGKILL)  # the parent only: its child lives on
        process.wait()
    owners.sweep(control)
    assert os.listdir(files) == []
    assert not owners.alive(control, parent_token)
    os.killpg(parent.pid, signal.SIGKILL)  # the child


def in_namespaces(env, log, hostname, pool, exec_=True):
    """A worker in a UTS namespace named `hostname` and a PID namespace of its own: with
    exec_, it is PID 1 there; without, its shell is, and the worker is PID 2."""
    worker = " ".join([sys.executable, *WORKER, f"--pool={pool}", "--concurrency=1"])
    script = f"hostname {hostname} && {'exec ' if exec_ else ''}{worker}"
    return subprocess.Popen(
        ["unshare", "--uts", "--pid", "--fork", "--mount-proc", "sh", "-c", script],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def stop(process, sig=signal.SIGTERM):
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@in_linux_namespaces
def test_a_killed_workers_task_runs_on_the_next_one_under_another_hostname(setup_for, tmp_path):
    """Killed mid-task (SIGKILL: a battery, a reboot, docker compose down), then a worker
    of another hostname on the same folder: the task runs again there (it never did)."""
    env, app = setup_for("devfs")
    log = open(tmp_path / "worker.log", "w")
    first = in_namespaces(env, log, "laptop-at-home", "prefork")
    try:
        result = app.send_task("devfs_tests.slow_add", ([1, 2], 3.0))
        wait_until(lambda: result.state == "STARTED", 60, "the task to start")
    finally:
        stop(first, signal.SIGKILL)
    started = time.monotonic()
    second = in_namespaces(env, log, "laptop-at-a-cafe", "prefork")
    try:
        assert result.get(timeout=60) == 3, (tmp_path / "worker.log").read_text()[-3000:]
        print(f"ran again, to its end (3 s), {time.monotonic() - started:.1f} s after the start")
    finally:
        stop(second)


@in_linux_namespaces
def test_two_pid_namespaces_on_one_folder_never_take_each_others_tasks(setup_for, tmp_path):
    """One hostname, two PID namespaces: the first worker is PID 2 in its own, where the
    second sees no PID 2 (it is PID 1, alone with --pool=solo). By PID, the second took
    the running task back as a dead process's and ran it at the same time."""
    env, app = setup_for("devfs")
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = in_namespaces(env, open(logs[0], "w"), "shared-host", "prefork", exec_=False)
    second = None
    try:
        result = app.send_task("devfs_tests.slow_add", ([2, 3], 6.0))
        wait_until(lambda: result.state == "STARTED", 60, "the task to start")
        second = in_namespaces(env, open(logs[1], "w"), "shared-host", "solo")
        assert result.get(timeout=60) == 5
    finally:
        for process in (first, second):
            if process is not None:
                stop(process)
    received = [log.read_text().count(f"[{result.id}] received") for log in logs]
    assert received == [1, 0], [log.read_text()[-2000:] for log in logs]
