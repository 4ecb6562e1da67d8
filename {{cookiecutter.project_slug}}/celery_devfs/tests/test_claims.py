"""claims.py: one process wins a message, holds it until it is settled, and gives it
back; a dead process's claim goes back to its queue; damaged files to quarantine."""

import json
import os
import subprocess
import sys

import pytest
from celery_devfs import owners
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
    return Claims(str(folder), str(folder.parent / "quarantine"), processed, control(folder))


def control(folder):
    return str(folder.parent / "control")


def files(folder):
    return sorted(os.listdir(folder))


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
    assert files(folder) == [f".{name}~{owners.token(control(folder))}.claimed"]


def test_settle_deletes_the_file_or_keeps_it_in_processed(folder, tmp_path):
    for processed in (None, str(tmp_path / "processed")):
        name, held = put(folder, 1), claims(folder, processed)
        path, found = held.claim(name, decode_body)
        held.hold("tag-1", path, name)
        held.settle("tag-1")
        assert files(folder) == []
    assert os.listdir(tmp_path / "processed") == [name]


def test_give_back_puts_it_where_it_was_marked_redelivered(folder):
    name, held = put(folder, 1), claims(folder)
    path, _ = held.claim(name, decode_body)
    held.hold("tag-1", path, name)
    assert held.give_back("tag-1") and not held.give_back("tag-1")
    assert files(folder) == [name]
    assert json.loads((folder / name).read_text())["properties"]["delivery_info"]["redelivered"]


# A process that takes an owner token in argv[1], prints it, and holds it until its
# stdin closes.
OWNER = "import sys; from celery_devfs import owners; print(owners.token(sys.argv[1]), flush=True)"
OWNER += "; sys.stdin.read()"


def owner_process(folder):
    process = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(folder)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    return process, process.stdout.readline().strip()


def test_a_claim_goes_back_once_its_owner_has_ended_whatever_its_host_or_pid(folder):
    """Owners are locks (owners.py): a live one keeps its claim, an ended one (killed,
    or whose file is gone) loses it. Claims of older versions: by host and PID."""
    live, live_token = owner_process(control(folder))
    ended, ended_token = owner_process(control(folder))
    ended.kill()
    ended.wait()
    # A file left unlocked by an owner killed before a reboot, whose PID is now a live
    # process's (ours): a PID used again changes nothing.
    reused = f"o{'1' * 16}"
    owners_folder = os.path.join(control(folder), ".owners")
    with open(os.path.join(owners_folder, reused), "w") as file:
        json.dump({"host": HOST, "pid": os.getpid()}, file)
    held = claims(folder)
    kept, back = [], []
    for owner, stays in [
        (live_token, True),
        (ended_token, False),
        (f"o{'0' * 16}", False),  # never was
        (reused, False),
        (f"{HOST}~{DEAD}", False),
        (f"{HOST}~{os.getpid()}", True),
        (f"other-host~{DEAD}", True),
    ]:
        name = put(folder, len(kept) + len(back))
        os.rename(folder / name, folder / f".{name}~{owner}.claimed")
        (kept if stays else back).append(name)
    try:
        taken = [held.take_back(c) for c in files(folder) if c.endswith(".claimed")]
        owners_left = set(os.listdir(owners_folder))
    finally:
        live.communicate("")
    assert sorted(t for t in taken if t) == back
    assert [n for n in files(folder) if n.endswith(".msg")] == back
    assert owners_left == {live_token, owners.token(control(folder))}  # not the ended one's


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
    assert message_of(f".1_x.q.msg~o{'a1' * 8}.claimed") == "1_x.q.msg"
    assert message_of(f".1_x.q.msg~{HOST}~12.claimed") == "1_x.q.msg"  # an older version's
    assert message_of("1_x.q.msg") == "1_x.q.msg"
    assert message_of(".1_x.q.msg.tmp") is None and message_of(".bad.claimed") is None
