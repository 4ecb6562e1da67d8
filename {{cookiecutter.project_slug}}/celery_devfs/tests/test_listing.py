"""listing.py: which message files wait in which queue, and when the folder is listed."""

import time

from celery_devfs.listing import Listing


def names(folder, *queues):
    """Message files for `queues`, in that order of sending; their names."""
    made = []
    for queue in queues:
        name = f"{time.time_ns():020d}_x.{queue}.msg"
        (folder / name).write_text("{}")
        made.append(name)
    return made


def test_a_listing_finds_each_queues_files_oldest_first_and_no_other_name(tmp_path):
    a1, b1, a2 = names(tmp_path, "a", "b", "a")
    for other in (".tmp-write", ".x.a.msg.tmp", "notes.txt"):
        (tmp_path / other).write_text("")
    listing = Listing(tmp_path)
    listing.list(consumed={}, take_back=lambda name: None)
    assert {q: list(n) for q, n in listing.pending.items()} == {"a": [a1, a2], "b": [b1]}


def test_claims_are_handed_to_take_back_and_come_back_as_what_it_returns(tmp_path):
    (tmp_path / ".old.a.msg~host~1.claimed").write_text("{}")
    asked = []
    listing = Listing(tmp_path)
    listing.list(consumed={}, take_back=lambda name: asked.append(name) or "old.a.msg")
    assert asked == [".old.a.msg~host~1.claimed"]
    assert list(listing.pending["a"]) == ["old.a.msg"]


def test_a_consumed_queue_keeps_its_names_and_takes_new_ones_from_inotify(tmp_path):
    (first,) = names(tmp_path, "a")
    listing = Listing(tmp_path)
    listing.list(consumed={"a": None}, take_back=lambda name: None)
    second, other = names(tmp_path, "a", "b")
    listing.arrived([second, other, ".x.tmp"], consumed={"a": None})
    assert list(listing.pending["a"]) == [first, second]
    assert "b" not in listing.pending  # not consumed here
    listing.pending["a"].popleft()  # taken
    listing.list(consumed={"a": None}, take_back=lambda name: None)
    assert list(listing.pending["a"]) == [second]  # not listed twice


def test_lost_events_empty_the_listing_and_make_it_due(tmp_path):
    listing = Listing(tmp_path)
    listing.interval = 60
    assert listing.due() and not listing.due()  # now, then not for a minute
    listing.pending["a"] = ["x"]
    listing.arrived(None, consumed={"a": None})
    assert listing.pending == {} and listing.due()


def test_a_process_that_does_not_consume_lists_at_every_look(tmp_path):
    listing = Listing(tmp_path)  # no interval: a producer, basic_get
    assert listing.due() and listing.due()


def test_a_deleted_folder_is_made_again_empty(tmp_path):
    listing = Listing(tmp_path / "gone")
    listing.list(consumed={}, take_back=lambda name: None)
    assert listing.pending == {} and (tmp_path / "gone").is_dir()


def test_a_clock_stepped_back_keeps_a_producers_messages_in_order(tmp_path, monkeypatch):
    """NTP steps a laptop's clock back after it wakes: what one process sends after
    a step of up to a minute still comes after what it sent before (new_name)."""
    from celery_devfs import messages

    now = time.time_ns()
    clock = iter([now, now - 10**9, now - 10**9 + 1, now - 3600 * 10**9])  # 1 s back, 1 h
    monkeypatch.setattr(time, "time_ns", lambda: next(clock))
    monkeypatch.setattr(messages, "_last_ns", [0])  # this process's names before: none
    sent = [messages.new_name("a") for _ in range(3)]
    an_hour_back = messages.new_name("b")  # a clock that was wrong: the clock wins
    assert an_hour_back.startswith(f"{now - 3600 * 10**9:020d}_")
    for name in sent:
        (tmp_path / name).write_text("{}")
    listing = Listing(tmp_path)
    listing.list(consumed={}, take_back=lambda name: None)
    assert list(listing.pending["a"]) == sent
