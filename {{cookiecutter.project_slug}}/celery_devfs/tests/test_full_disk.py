"""A full disk, for real: a small tmpfs in a mount namespace of its own (Linux's
`unshare`, no root needed), with real workers. Nothing written half, nothing lost."""

import json
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT

# Mount a tmpfs of $2 on $1, then run the rest of the command line there.
MOUNT_AND_RUN = 'mount -t tmpfs -o size="$2" tmpfs "$1" && shift 2 && exec "$@"'


def on_a_full_disk(tmp_path, scenario, size="2m"):
    """Run full_disk.py's `scenario` on a tmpfs of `size`; return what it printed."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-Urm", "true"]).returncode:
        pytest.skip("needs Linux's unshare to mount a small tmpfs as a full disk")
    disk, log = tmp_path / "disk", tmp_path / "worker.log"
    disk.mkdir()
    command = [sys.executable, "-m", "celery_devfs.tests.full_disk", scenario, disk, log]
    done = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", MOUNT_AND_RUN, "sh", disk, size, *map(str, command)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = log.read_text() if log.exists() else ""
    assert done.returncode == 0, f"{done.stderr}\n{said}"
    return json.loads(done.stdout), said


def test_a_full_disk_fails_the_caller_and_leaves_no_temporary_file(tmp_path):
    outcome, _ = on_a_full_disk(tmp_path, "callers", size="256k")
    assert outcome["errors"] == [28, 28]  # ENOSPC reached both callers
    assert outcome["left"] == []  # no .tmp file in queue/ or results/


def test_tasks_that_end_on_a_full_disk_keep_their_outcome_once_there_is_room(tmp_path):
    found, log = on_a_full_disk(tmp_path, "tasks")
    # While the disk is full: the results wait in the worker, which lives on, and
    # a task sent from outside a task fails at once (ENOSPC) instead of waiting.
    assert found["while_full"] == dict(plain="STARTED", chord="PENDING", worker_alive=True, send=28)
    # Room again: the task's result, the chord's body and a new task.
    assert found["outcome"] == dict(plain=3, chord=10, still_serves=42)
    waiting = [line for line in log.splitlines() if "waiting for space" in line]
    assert len(waiting) >= 2, log  # one line per write that waited: each task's result
    assert "Traceback" not in log, log


def test_requeues_consumers_and_bindings_on_a_full_disk_lose_nothing(tmp_path):
    found, log = on_a_full_disk(tmp_path, "paths")
    assert found["requeued"] == [True]  # back in its queue (a rename needs no room)
    assert found["consumers_while_full"] == 0  # not recorded yet; the consumer goes on
    # Room again: the consumer, the queue's x-expires and the unbinding recorded, the
    # message delivered once more.
    assert found["consumers"] == 1
    assert found["arguments"] == {"x-expires": 60000}
    assert found["bound"] == ["paths"]
    assert found["message"] == {"n": 1}
    assert "put back not marked redelivered" in log
    assert "Arguments of watched not recorded yet, will retry" in log  # once per outage


def test_a_worker_started_on_a_full_disk_serves_once_there_is_room(tmp_path):
    found, log = on_a_full_disk(tmp_path, "start")
    assert found == dict(alive_while_full=True, result=42), log


def test_beat_on_a_full_disk_goes_on_and_sends_again_once_there_is_room(tmp_path):
    found, log = on_a_full_disk(tmp_path, "beat")
    assert found == dict(alive_while_full=True, sent_again=True, alive=True), log
    assert "Couldn't apply scheduled task add: [Errno 28] No space left on device" in log
