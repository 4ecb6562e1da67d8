"""No file in the data folder stops a worker: damaged or hostile files are
quarantined with one log line, and a failed write leaves nothing behind.

In-process tests drive the development broker through kombu, as kombu's own
transport tests do; one test runs a real worker on all the files at once.
"""

import json
import logging
import os
import time

import pytest
from celery_devfs.claims import HOST

from .conftest import WORKER


def a_message(app, folders):
    """A real message file's content, as Celery's producer writes it."""
    with app.connection_for_write() as connection:
        app.send_task("devfs_tests.add", ([1, 2],), connection=connection)
    (path,) = folders["queue"].glob("*.msg")
    content = json.loads(path.read_bytes())
    path.unlink()
    return content


def message_name(queue="devfs-tests"):
    """A message file's name in `queue` (the tests' apps each have a queue of their own)."""
    return f"{time.time_ns():020d}_hostile.{queue}.msg"


def with_body(message, body):
    return {**message, "body": body}


# name -> how to make it at `path`, given a valid message
HOSTILE = {
    "no properties": lambda path, m: path.write_text('{"body": "x"}'),
    "properties a list": lambda path, m: path.write_text('{"body": "", "properties": []}'),
    "body not base64": lambda path, m: path.write_text(json.dumps(with_body(m, "x"))),
    "body not a string": lambda path, m: path.write_text(json.dumps(with_body(m, 42))),
    "no delivery_tag": lambda path, m: path.write_text(
        json.dumps({**m, "properties": {**m["properties"], "delivery_tag": None}})
    ),
    "headers a list": lambda path, m: path.write_text(json.dumps({**m, "headers": [1]})),
    "nested too deep": lambda path, m: path.write_text("[" * 100_000 + "]" * 100_000),
    "not JSON": lambda path, m: path.write_bytes(b"\xff\xfe garbage"),
    "empty": lambda path, m: path.write_bytes(b""),
    "a folder": lambda path, m: path.mkdir(),
    "a FIFO": lambda path, m: os.mkfifo(path),
    "a symlink to a FIFO": lambda path, m: (
        os.mkfifo(path.with_name("fifo")),
        path.symlink_to(path.with_name("fifo")),
    ),
    "a symlink to /dev/zero": lambda path, m: path.symlink_to("/dev/zero"),
    "over 128 MiB": lambda path, m: os.truncate(path.open("wb").name, 129 * 1024 * 1024),
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_message_file_is_quarantined_and_the_next_one_delivered(dev, kind, caplog):
    env, app, folders = dev
    message = a_message(app, folders)
    queue = app.conf.task_default_queue
    path = folders["queue"] / message_name(queue)
    HOSTILE[kind](path, message)
    with caplog.at_level(logging.ERROR), app.connection_for_read() as connection:
        app.send_task("devfs_tests.add", ([5, 6],), connection=connection)  # after it
        got = connection.default_channel.basic_get(queue)
        assert got is not None and got.payload[0] == [[5, 6]]
        got.ack()
    assert [p.name for p in folders["quarantine"].iterdir()] == [path.name]
    said = [r.getMessage() for r in caplog.records if "Damaged message file" in r.getMessage()]
    assert len(said) == 1 and str(folders["quarantine"] / path.name) in said[0], said
    assert [p.name for p in folders["queue"].iterdir() if p.name != "fifo"] == []


@pytest.mark.parametrize(
    "name",
    [
        ".garbage.claimed",
        f".{message_name()}~{HOST}~notapid.claimed",
        f".{message_name()}~{HOST}~0.claimed",
        f".{message_name()}~{HOST}~-1.claimed",
        f".~{HOST}~12345678.claimed",
        "no-dot~x~1.claimed",
    ],
    ids=["no-fields", "pid-not-a-number", "pid-0", "pid-negative", "no-message", "no-dot"],
)
def test_a_claim_name_that_does_not_parse_is_quarantined_not_raised(dev, name, caplog):
    env, app, folders = dev
    (folders["queue"] / name).write_text("{}")
    with caplog.at_level(logging.ERROR), app.connection_for_read() as connection:
        queue = app.conf.task_default_queue
        assert connection.default_channel.basic_get(queue) is None
        assert connection.default_channel.basic_get(queue) is None  # and only once
    assert [p.name for p in folders["quarantine"].iterdir()] == [name]
    said = [r.getMessage() for r in caplog.records if "not a claim name" in r.getMessage()]
    assert len(said) == 1


def test_clients_ignore_bad_claim_names_too(dev):
    env, app, folders = dev
    (folders["queue"] / ".garbage.claimed").write_text("{}")
    assert app.control.ping(timeout=0.2) == []  # no worker, and no ValueError


def test_a_worker_survives_every_hostile_file_at_once(dev, spawn, tmp_path):
    env, app, folders = dev
    message = a_message(app, folders)
    made = []
    for n, make in enumerate(HOSTILE.values()):
        sub = tmp_path / f"case{n}"
        sub.mkdir()
        path = sub / message_name()
        make(path, message)
        made.append(path)
    log_file = tmp_path / "worker.log"
    worker = spawn([*WORKER, "--concurrency=1"], env, log=open(log_file, "w"))
    queue = app.conf.task_default_queue
    for path in made:  # into the queue while the worker runs, each under its own name
        os.rename(path, folders["queue"] / f"{time.time_ns():020d}_{path.parent.name}.{queue}.msg")
    for name in (".garbage.claimed", f".{message_name()}~{HOST}~notapid.claimed"):
        (folders["queue"] / name).write_text("{}")
    assert app.send_task("devfs_tests.add", ([20, 22],)).get(timeout=60) == 42
    assert app.control.ping(timeout=5), "the worker does not answer"
    assert worker.poll() is None, log_file.read_text()
    assert len(list(folders["quarantine"].iterdir())) == len(HOSTILE) + 2
    said = [line for line in log_file.read_text().splitlines() if "Damaged message file" in line]
    assert len(said) == len(HOSTILE) + 2, said
    worker.terminate()  # a warm shutdown still works: nothing blocks in open()
    assert worker.wait(timeout=30) == 0


def test_a_result_file_that_is_a_fifo_reads_as_no_result(dev, caplog):
    env, app, folders = dev
    os.mkfifo(folders["results"] / "celery-task-meta-fifo")
    with caplog.at_level(logging.ERROR):
        assert app.backend.get_task_meta("fifo")["status"] == "PENDING"
    assert "Damaged result file" in caplog.text
