"""Records in the control folder (bindings, queues): JSON files, read checked and
rewritten whole under a lock, and the writes a full disk holds back."""

import json
import logging
import os
import stat

try:
    import fcntl
except ImportError:  # Windows: msvcrt locks one byte of the lock file instead
    fcntl = None
    import msvcrt

from .folders import read_regular_file, write_private_file

logger = logging.getLogger(__name__)


# The bytes of the control files this process read, by (device, inode, times, size):
# a record is always replaced whole, never changed in place, so a file whose lstat
# is unchanged holds the same bytes. Each publish reads its exchange's bindings and
# declaration: a stat instead of an open and a read.
_read = {}
CACHED_FILES = 512


def _bytes(file):
    info = os.lstat(file)
    key = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_ctime_ns, info.st_size)
    cached = _read.get(file)
    if cached is None or cached[0] != key or not stat.S_ISREG(info.st_mode):
        if len(_read) >= CACHED_FILES:
            _read.clear()  # reply queues come and go by the thousand
        cached = _read[file] = (key, read_regular_file(file))
    return cached[1]


def read(file, check, empty):
    """check(the JSON in `file`); empty() when there is none, or it is damaged."""
    try:
        return check(json.loads(_bytes(file)))
    except FileNotFoundError:
        return empty()
    except (ValueError, RecursionError) as exc:  # DamagedFile, JSON, Unicode, nesting
        logger.error("Unreadable file %s (%s): ignored", file, exc)
        return empty()


def change(file, read, change, lock=None):
    """Rewrite `file` under a lock (its own, or `lock`) with change(read(file)),
    replacing it whole; delete it when `change` returns None."""
    lock = lock or file.with_name(f".{file.name}.lock")
    with open(os.open(lock, os.O_RDWR | os.O_CREAT, 0o600), "a+b") as lock_file:
        _lock(lock_file, True)
        try:
            before = read(file)
            after = change(before)
            if after is None:
                file.unlink(missing_ok=True)
            elif after != before or not file.exists():
                temporary = file.with_name(f".{file.name}.{os.getpid()}.tmp")
                write_private_file(file, json.dumps(after).encode(), temporary)
        finally:
            _lock(lock_file, False)


def _lock(file, take):
    if fcntl:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX if take else fcntl.LOCK_UN)
    else:
        file.seek(0)
        msvcrt.locking(file.fileno(), msvcrt.LK_LOCK if take else msvcrt.LK_UNLCK, 1)


class Later:
    """Writes that a full disk held back, written again at each flush() (a consumer's
    timer, each second): as on RabbitMQ, a full disk fails no declaration, binding
    or consumer. One log line while any waits."""

    def __init__(self):
        self.waiting = {}  # key -> (what, write())
        self._said = False

    def write(self, key, what, write):
        self.waiting[key] = (what, write)
        self.flush()

    def flush(self):
        for key, (what, write) in list(self.waiting.items()):
            try:
                write()
            except OSError as exc:
                if not self._said:
                    logger.warning("%s not recorded yet, will retry: %s", what, exc)
                    self._said = True
                return
            del self.waiting[key]
        self._said = False

    def cancel(self, key):
        self.waiting.pop(key, None)
