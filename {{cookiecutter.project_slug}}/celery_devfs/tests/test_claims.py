"""claims.py: one process wins a message, holds it until it is settled, and gives it
back; a dead process's claim goes back to its queue; damaged files to quarantine."""

import json
import os

import pytest
from celery_devfs.claims import HOST, Claims, message_of
from kombu.transport.virtual import Channel

DEAD = 2**22 + 12345  # above Linux's default pid_max: no such process
decode_body = Channel.decode_body.__get__(None, object)  # kombu's, without a channel


def message(n):
    return {
        "body": json.dumps({"n": n}),
        "headers": {},
        "properties": {
            "delivery_info": {"exchange": "", "routing_key": "q"},
            "delivery_tag": f"tag-{n}",
        },
    }


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "queue").mkdir()
    return tmp_path / "queue"


def claims(folder, processed=None):
    return Claims(str(folder), str(folder.parent / "quarantine"), processed)


def put(folder, n, name=None):
    name = name or f"{n:020d}_x.q.msg"
    (folder / name).write_text(json.dumps(message(n)))
    return name


def test_of_two_claimers_one_wins(folder):
    name = put(folder, 1)
    first, second = claims(folder), claims(folder)
    won = first.claim(name, decode_body)
    assert won is not None and won[1]["body"] == json.dumps({"n": 1})
    assert second.claim(name, decode_body) is None
    assert os.listdir(folder) == [f".{name}~{HOST}~{os.getpid()}.claimed"]


def test_settle_deletes_the_file_or_keeps_it_in_processed(folder, tmp_path):
    for processed in (None, str(tmp_path / "processed")):
        name, held = put(folder, 1), claims(folder, processed)
        path, found = held.claim(name, decode_body)
        held.hold("tag-1", path, name)
        held.settle("tag-1")
        assert os.listdir(folder) == []
    assert os.listdir(tmp_path / "processed") == [name]


def test_give_back_puts_it_where_it_was_marked_redelivered(folder):
    name, held = put(folder, 1), claims(folder)
    path, _ = held.claim(name, decode_body)
    held.hold("tag-1", path, name)
    assert held.give_back("tag-1") and not held.give_back("tag-1")
    assert os.listdir(folder) == [name]
    assert json.loads((folder / name).read_text())["properties"]["delivery_info"]["redelivered"]


def test_only_the_claims_of_dead_processes_of_this_machine_are_taken_back(folder):
    held = claims(folder)
    for owner in (f"{HOST}~{DEAD}", f"{HOST}~{os.getpid()}", f"other-host~{DEAD}"):
        name = put(folder, len(os.listdir(folder)))
        os.rename(folder / name, folder / f".{name}~{owner}.claimed")
    taken = [held.take_back(claimed) for claimed in sorted(os.listdir(folder))]
    assert [t for t in taken if t] == [f"{0:020d}_x.q.msg"]
    assert f"{0:020d}_x.q.msg" in os.listdir(folder)


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"", "Expecting value"), (b"[]", "not a JSON object"), (b'{"properties": {}}', "delivery")],
)
def test_a_damaged_message_goes_to_quarantine_with_one_line(folder, caplog, content, why):
    name = f"{1:020d}_x.q.msg"
    (folder / name).write_bytes(content)
    assert claims(folder).claim(name, decode_body) is None
    assert os.listdir(folder.parent / "quarantine") == [name]
    assert why in caplog.text


def test_a_file_name_that_is_no_claim_goes_to_quarantine(folder):
    (folder / ".junk.claimed").write_text("{}")
    assert claims(folder).take_back(".junk.claimed") is None
    assert os.listdir(folder.parent / "quarantine") == [".junk.claimed"]


def test_message_of_names_the_message_of_a_claim_or_none():
    assert message_of(f".1_x.q.msg~{HOST}~12.claimed") == "1_x.q.msg"
    assert message_of("1_x.q.msg") == "1_x.q.msg"
    assert message_of(".1_x.q.msg.tmp") is None and message_of(".bad.claimed") is None
