"""Each platform's own code path, run here on Linux as far as Linux can show it:
Windows (no SIGQUIT, fork, register_at_fork or mkfifo), FreeBSD and musl (how the
C library is found), WSL 2's /mnt/c (a filesystem whose writes from Windows wake
nothing), and a process with descriptors numbered 1024 and more."""

import ctypes.util
import logging
import os
import resource
import subprocess
import sys

import celery_devfs
import pytest
from celery_devfs import folders, notify
from celery_devfs.testing import ROOT

# Python on Windows has none of these; as Windows, they are removed before import.
AS_WINDOWS = """
import os, signal
for module, name in [(signal, "SIGQUIT"), (os, "fork"), (os, "register_at_fork"),
                     (os, "mkfifo")]:
    delattr(module, name)
import celery_devfs, celery_devfs.notify, celery_devfs.transport, celery_devfs.backend
try:
    celery_devfs.check_platform("win32")
except celery_devfs.PlatformError as exc:
    print(exc)
"""


def test_as_windows_it_imports_and_says_in_one_line_to_use_wsl():
    done = subprocess.run(
        [sys.executable, "-c", AS_WINDOWS], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.stderr == ""
    assert done.stdout == (
        "the development broker (celery_devfs) runs on Linux, macOS, the BSDs and WSL 2, "
        "not on Windows itself: open the project in WSL 2\n"
    )


def test_windows_is_refused_before_anything_is_made(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(celery_devfs.PlatformError, match="open the project in WSL 2"):
        celery_devfs.celery_settings(tmp_path / "data")
    assert not (tmp_path / "data").exists()


# Linux's own paths: inotify is Linux's (elsewhere these are the doorbell's, above).
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify: Linux")


@pytest.fixture
def fresh_libc():
    notify._libc.cache_clear()
    yield
    notify._libc.cache_clear()


def test_on_the_bsds_the_doorbell_rings_even_where_libc_has_inotify(
    tmp_path, monkeypatch, fresh_libc
):
    """FreeBSD 15's libc has an inotify of its own, untested: the README says doorbell."""
    monkeypatch.setattr(sys, "platform", "freebsd15")
    watch = notify.watching(tmp_path)
    try:
        assert isinstance(watch, notify.Doorbell)
    finally:
        watch.close()


@linux_only
def test_inotify_is_found_without_find_library_as_on_musl(tmp_path, monkeypatch, fresh_libc):
    """Alpine's musl: find_library("c") finds nothing (and runs ldconfig to say so)."""

    def nothing(name):
        raise AssertionError(f"find_library({name!r}) was called")

    monkeypatch.setattr(ctypes.util, "find_library", nothing)
    watch = notify.watching(tmp_path)
    try:
        assert isinstance(watch, notify.Inotify)
    finally:
        watch.close()


MOUNTS = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
95 22 0:53 / /mnt/c rw,noatime shared:47 - 9p drvfs rw,aname=drvfs;path=C:\\
96 22 0:54 / /mnt/my\\040disk rw - ext4 /dev/sdb1 rw
"""


def test_the_filesystem_of_a_folder_is_read_from_mountinfo(tmp_path):
    (tmp_path / "mountinfo").write_text(MOUNTS)
    mountinfo = str(tmp_path / "mountinfo")
    for folder, found in [
        ("/mnt/c/Users/me/project/.celery/queue", "9p"),
        ("/mnt/c", "9p"),
        ("/mnt/cc", "ext4"),
        ("/mnt/my disk/x", "ext4"),
        ("/home/me", "ext4"),
        (b"/mnt/c/x", "9p"),  # folders come as bytes too
    ]:
        assert folders.filesystem(folder, mountinfo) == found, folder
    assert folders.filesystem("/x", str(tmp_path / "none")) is None  # macOS: no /proc


@linux_only
def test_a_folder_on_wsls_windows_drives_is_polled(tmp_path, monkeypatch):
    """On /mnt/c inotify is accepted, but files written from Windows never wake it."""
    queue, mountinfo = tmp_path / "queue", tmp_path / "mountinfo"
    queue.mkdir()
    watch = notify.watching(queue)
    assert isinstance(watch, notify.Inotify)  # before: inotify
    watch.close()
    mountinfo.write_text(MOUNTS + f"97 22 0:55 / {tmp_path} rw - 9p drvfs rw\n")
    monkeypatch.setattr(folders, "MOUNTINFO", str(mountinfo))
    folders.filesystem.cache_clear()
    try:
        assert notify.watching(queue) is None
    finally:
        folders.filesystem.cache_clear()


def test_a_folder_that_other_machines_can_share_is_one_warning(tmp_path, monkeypatch, caplog):
    """Another machine's or VM's processes hold locks that this kernel never sees
    (owners.py): said once, when the first owner of a process is made there."""
    from celery_devfs import owners

    control, mountinfo = tmp_path / "control", tmp_path / "mountinfo"
    for kind, warned in [("nfs4", True), ("9p", False)]:  # 9p: WSL 2's /mnt/c
        mountinfo.write_text(MOUNTS + f"97 22 0:55 / {tmp_path} rw - {kind} server:/x rw\n")
        monkeypatch.setattr(folders, "MOUNTINFO", str(mountinfo))
        folders.filesystem.cache_clear()
        caplog.clear()
        try:
            with caplog.at_level(logging.WARNING, logger=owners.__name__):
                owners.token(control)
        finally:
            folders.filesystem.cache_clear()
            owners._forget_after_fork()  # a new owner at the next token()
        said = [r.getMessage() for r in caplog.records if "one machine per" in r.getMessage()]
        assert len(said) == warned and (not said or f"is on {kind}" in said[0]), said


def test_descriptors_from_1024_on_are_waited_on(tmp_path):
    """A process with many files open: select() raises ValueError for such a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"this machine allows {hard} open files, not 2048")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    watch = notify.watching(tmp_path)
    high = os.dup2(watch.fd, 1500)
    os.close(watch.fd)
    watch.fd = high
    try:
        assert watch.names(0) == set()
        (tmp_path / "a.msg").write_bytes(b"")
        notify.ring(tmp_path, "a.msg")
        assert watch.names(5) == {"a.msg"}
    finally:
        watch.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
