"""The doorbell: how a process without inotify (macOS, the BSDs) learns at once that a
file arrived, tested here on Linux through the same code those systems run."""

import os
import time

from celery_devfs import folders, notify
from celery_devfs.notify import Doorbell


def test_a_ring_names_the_file_at_once_and_in_order(tmp_path):
    bell = Doorbell.watching(tmp_path)
    try:
        assert bell.names(0) == set()  # nothing yet
        started = time.monotonic()
        for name in ("a.msg", "b.msg", "c.msg"):
            notify.ring(tmp_path, name)
        assert bell.read() == ["a.msg", "b.msg", "c.msg"]
        assert time.monotonic() - started < 0.1  # no polling interval in between
    finally:
        bell.close()
    assert os.listdir(tmp_path / Doorbell.FOLDER) == []  # closed: its FIFO is gone


def test_every_waiting_process_hears_a_ring(tmp_path):
    bells = [Doorbell.watching(tmp_path) for _ in range(3)]
    notify.ring(tmp_path, "x.msg")
    assert [bell.names(1) for bell in bells] == [{"x.msg"}] * 3
    for bell in bells:
        bell.close()


def test_a_full_pipe_says_look_at_everything(tmp_path):
    bell = Doorbell.watching(tmp_path)
    try:
        for i in range(20000):  # more than any pipe holds: later rings are dropped
            notify.ring(tmp_path, f"{i:020d}.celery.msg")
        assert bell.read() is None
        assert bell.read() == []  # emptied
    finally:
        bell.close()


def test_a_dead_process_bell_is_removed_and_other_files_are_left_alone(tmp_path):
    bells = tmp_path / Doorbell.FOLDER
    bell = Doorbell.watching(tmp_path)
    os.mkfifo(bells / "12345-dead")  # no reader: its process was killed
    (bells / "a-file").write_bytes(b"mine")
    (bells / "a-link").symlink_to(tmp_path / "elsewhere")
    try:
        notify.ring(tmp_path, "y.msg")
        assert bell.read() == ["y.msg"]
    finally:
        bell.close()
    assert sorted(os.listdir(bells)) == ["a-file", "a-link"]
    assert (bells / "a-file").read_bytes() == b"mine"  # not written to
    assert not (tmp_path / "elsewhere").exists()


def test_a_bell_without_a_reader_here_stays_on_a_folder_other_machines_share(tmp_path, monkeypatch):
    """A writer in a container beside a Mac gets ENXIO from the Mac's FIFOs (their
    readers are in another kernel): on such a folder a ring deletes no bell."""
    bells = tmp_path / Doorbell.FOLDER
    bells.mkdir()
    os.mkfifo(bells / "12345-on-the-host")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"97 22 0:55 / {tmp_path} rw - virtiofs share rw\n")
    monkeypatch.setattr(folders, "MOUNTINFO", str(mountinfo))
    folders.filesystem.cache_clear()
    try:
        notify.ring(tmp_path, "y.msg")
    finally:
        folders.filesystem.cache_clear()
    assert os.listdir(bells) == ["12345-on-the-host"]


def test_no_doorbell_where_its_folder_is_not_a_folder(tmp_path):
    (tmp_path / Doorbell.FOLDER).symlink_to(tmp_path)
    assert Doorbell.watching(tmp_path) is None  # then the consumer polls


def test_a_ring_where_nobody_waits_costs_a_failed_listdir(tmp_path):
    notify.ring(tmp_path, "z.msg")  # no .doorbells/: nothing made
    assert os.listdir(tmp_path) == []
