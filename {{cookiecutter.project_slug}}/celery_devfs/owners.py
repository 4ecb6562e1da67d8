"""Who is alive, whatever the hostname or the process ID says.

Each process that consumes or claims messages holds, for its life, a lock on an
owner file of its own: ``<control folder>/.owners/<token>`` (its host and PID inside,
for people). Claims and consumer records name the token. An owner is dead
when its lock can be taken, or its file is gone: the kernel drops a process's locks
when it ends, however it ends (SIGKILL, out of memory, a reboot). So a hostname that
changes (macOS on each network, a container at each `up`), a PID used again (PID 1
in a container, after a reboot) and PID namespaces (a container, a Flatpak IDE, two
WSL distributions on one folder) change nothing: the lock is on the file, which
they all see.

What it cannot know: a process of another machine or VM (a network folder, Docker
Desktop's share between a Mac and its containers), whose locks do not reach this
kernel. celery_devfs takes one machine per data folder, and says so in one line on
a folder that other machines can share (folders.SHARED_FILESYSTEMS).

POSIX record locks (fcntl.lockf): a forked child (a pool process) does not inherit
them, so a dead worker's pool processes never keep it alive.
"""

import atexit
import json
import logging
import os
import re
import secrets
import socket
import time

try:
    import fcntl
except ImportError:  # Windows, refused before any owner is needed (folders.py)
    fcntl = None

from .folders import SHARED_FILESYSTEMS, filesystem

logger = logging.getLogger(__name__)
FOLDER = ".owners"
TOKEN = re.compile(r"o[0-9a-f]{16}")  # never a hostname or a PID of the older names
SWEEP = 60.0  # seconds between looks for the files of owners that ended unseen
_mine = {}  # control folder -> (token, descriptor holding the lock) of this process
_swept = {}  # control folder -> when this process last swept it


def token(folder):
    """This process's owner token in `folder` (a control folder), locked on first use,
    and made again if its file was deleted under it."""
    folder = os.fspath(folder)
    entry = _mine.get(folder)
    if entry is not None:
        path = os.path.join(folder, FOLDER, entry[0])
        try:
            if os.stat(path).st_ino == os.fstat(entry[1]).st_ino:
                return entry[0]
        except OSError:
            pass
        os.close(entry[1])
    owners = os.path.join(folder, FOLDER)
    os.makedirs(owners, mode=0o700, exist_ok=True)
    name = f"o{secrets.token_hex(8)}"
    temporary = os.path.join(owners, f".{name}.tmp")
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode())
        # Locked before it has its name: a file found under a token is always locked
        # while its owner lives.
        os.rename(temporary, os.path.join(owners, name))
    except BaseException:
        os.close(fd)
        raise
    _mine[folder] = (name, fd)
    if (kind := filesystem(folder)) in SHARED_FILESYSTEMS:
        logger.warning(
            "celery_devfs: %s is on %s, which other machines or VMs can share: their "
            "workers are not seen from here (a task could run twice); use one machine "
            "per data folder",
            folder, kind,
        )  # fmt: skip
    return name


def alive(folder, name):
    """False when owner `name` of `folder` has ended: its lock is free (its file is
    then deleted) or its file is gone. True when in doubt: a live owner's message
    must never be taken from it."""
    if any(name == mine for mine, _ in _mine.values()):
        # Ours (under whatever spelling of the folder): a process always gets its own
        # POSIX lock again, and closing the file would free it.
        return True
    path = os.path.join(os.fspath(folder), FOLDER, name)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True  # held: its owner lives
        try:
            os.unlink(path)  # while we hold the lock: no owner can come back to it
        except OSError:
            pass
        return False
    finally:
        os.close(fd)


def sweep(folder):
    """Delete the files of ended owners that no claim or consumer names any more (a
    `celery inspect` killed mid-way), once a minute at most per process."""
    folder = os.fspath(folder)
    if time.monotonic() < _swept.get(folder, 0.0):
        return
    _swept[folder] = time.monotonic() + SWEEP
    try:
        names = os.listdir(os.path.join(folder, FOLDER))
    except OSError:
        return
    for name in names:
        if TOKEN.fullmatch(name):
            alive(folder, name)  # deletes it when its owner has ended


@atexit.register
def _leave():
    """An owner that ends cleanly deletes its own file (a killed one's goes by sweep
    or by the first look at its claims)."""
    for folder, (name, fd) in list(_mine.items()):
        try:
            os.unlink(os.path.join(folder, FOLDER, name))
        except OSError:
            pass
        os.close(fd)
    _mine.clear()


def _forget_after_fork():
    """A forked child holds none of its parent's locks: its own token, if it needs one."""
    for _, fd in _mine.values():
        try:
            os.close(fd)  # the child's copy: the parent's lock is the parent's
        except OSError:
            pass
    _mine.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
