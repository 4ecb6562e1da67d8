"""queues.py: consumer counts, arguments, and what expires, as RabbitMQ does."""

import json
import os
import time

import pytest
from celery_devfs import control
from celery_devfs.bindings import Bindings
from celery_devfs.claims import HOST
from celery_devfs.queues import Queues, arguments_of

DEAD = 2**22 + 12345  # above Linux's default pid_max: no such process


@pytest.fixture
def queues(tmp_path):
    for name in ("control", "queue"):
        (tmp_path / name).mkdir()
    return Queues(tmp_path / "control", str(tmp_path / "queue"), Bindings(tmp_path / "control"))


def message_file(queues, queue, age_s=0.0, claimed=False):
    name = f"{time.time_ns() - int(age_s * 1e9):020d}_x.{queue}.msg"
    if claimed:
        name = f".{name}~{HOST}~{os.getpid()}.claimed"
    (queues.folder.parent / "queue" / name).write_text("{}")
    return name


def files(queues):
    return sorted(os.listdir(queues.folder.parent / "queue"))


def test_consumers_are_counted_while_their_process_lives(queues):
    queues.add_consumer("q", "a")
    queues.add_consumer("q", "b")
    gone = [[f"o{'0' * 16}", 1, "c"], [HOST, DEAD, "d"]]  # an ended owner; an older version's
    queues.change("q", lambda info: {**info, "consumers": [*info["consumers"], *gone]})
    assert [tag for _, _, tag in queues.consumers("q")] == ["a", "b"]  # c's, d's have ended
    assert [tag for _, _, tag in queues.remove_consumer("q", "a")] == ["b"]
    assert queues.remove_consumer("q", "b") == []
    assert not queues.file("q").exists()  # no consumer, no argument: nothing to keep


def test_only_rabbitmqs_time_arguments_in_ms_are_kept():
    declared = {"x-expires": 60000, "x-message-ttl": "5", "x-max-length": 3, "x-dead": None}
    assert arguments_of(declared) == {"x-expires": 60000}


def test_a_queue_unused_for_its_x_expires_goes_with_bindings_and_messages(queues):
    queues.declare("q", {"x-expires": 100})
    queues.bindings.bind("ex", ("q", "", "q"))
    queues.bindings.bind("ex", ("other", "", "other"))
    kept = [message_file(queues, "other")]
    message_file(queues, "q")
    message_file(queues, "q", claimed=True)
    assert queues.expire(consumed_here={}) == []  # used less than 100 ms ago
    time.sleep(0.15)
    assert queues.expire(consumed_here={}) == ["q"]
    assert files(queues) == kept
    assert [row.queue for row in queues.bindings.table("ex")] == ["other"]
    assert not queues.file("q").exists()


def test_a_consumed_queue_never_expires(queues):
    queues.declare("live", {"x-expires": 10})
    queues.add_consumer("live", "a")
    queues.declare("here", {"x-expires": 10})  # its consumer not recorded (a full disk)
    time.sleep(0.05)
    assert queues.expire(consumed_here={"here": None}) == []
    assert queues.file("live").exists() and queues.file("here").exists()


def test_messages_older_than_x_message_ttl_go_while_no_one_consumes(queues):
    queues.declare("q", {"x-message-ttl": 1000})
    old, new = message_file(queues, "q", age_s=2), message_file(queues, "q")
    queues.expire(consumed_here={})
    assert files(queues) == [new]
    assert old not in files(queues)


def test_a_damaged_queue_file_reads_as_no_consumer(queues, caplog):
    queues.file("q").write_text(json.dumps({"consumers": "everyone"}))
    assert queues.consumers("q") == []
    assert "Unreadable file" in caplog.text


def test_a_record_is_read_again_once_replaced_and_only_then(queues, monkeypatch):
    """control.read keeps the bytes of a file whose lstat is unchanged (records are
    replaced whole): each publish reads its exchange's files."""
    queues.declare("q", {"x-expires": 100})
    opened = []
    real = control.read_regular_file
    monkeypatch.setattr(control, "read_regular_file", lambda f: opened.append(f) or real(f))
    for _ in range(3):
        assert queues.read(queues.file("q"))["arguments"] == {"x-expires": 100}
    assert len(opened) <= 1
    queues.declare("q", {"x-expires": 200})  # by any process: a new file
    assert queues.read(queues.file("q"))["arguments"] == {"x-expires": 200}
