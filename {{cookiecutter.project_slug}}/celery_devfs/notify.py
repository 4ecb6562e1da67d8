"""Waking up: when a file arrives in a folder (inotify on Linux, through ctypes: no
dependency; a doorbell elsewhere), when an acknowledgement frees a prefetch place,
or when the worker starts to stop."""

import collections
import ctypes
import errno
import functools
import math
import os
import select
import signal
import stat
import struct
import sys
import threading
import time
import uuid

from .folders import SHARED_FILESYSTEMS, filesystem, foreign


def drain(fd):
    """Read all there is from a non-blocking fd, and return it."""
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)


# Celery's SIGTERM, SIGINT and SIGQUIT handlers run while the worker sleeps in epoll
# or select, which Python then resumes until its timeout. The standard library's
# signal wakeup fd ends that sleep: the interpreter writes each signal's number into
# it the moment the signal arrives, in C, taking no lock. (Not a receiver of Celery's
# worker_shutting_down: Celery sends that from inside its handler and takes a lock
# the first time, so a second SIGTERM meanwhile, as a process-group kill under
# `uv run` gives, deadlocks the worker.)
STOPS = {signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGQUIT", signal.SIGTERM)}  # Windows
_signals = {"fd": None, "write": None, "stopping": False}


def signal_fd():
    """The read end of this process's signal wakeup pipe, made on first use; None
    outside the main thread, or where another library (asyncio) owns the wakeup fd."""
    if _signals["fd"] is None and threading.current_thread() is threading.main_thread():
        read, write = os.pipe()
        for fd in (read, write):
            os.set_blocking(fd, False)
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        if previous == -1:
            _signals.update(fd=read, write=write)
        else:  # someone else's: leave it theirs
            signal.set_wakeup_fd(previous)
            os.close(read)
            os.close(write)
    return _signals["fd"]


def read_signals(fd):
    """Empty the wakeup pipe, remembering whether a stop signal was among them."""
    if STOPS & set(drain(fd)):
        _signals["stopping"] = True


def stopping():
    """Has the process received SIGTERM, SIGINT or SIGQUIT (the worker is stopping)?"""
    fd = _signals["fd"]
    if fd is not None:
        read_signals(fd)
    return _signals["stopping"]


def _forget_in_child():
    """A forked pool process sends its signals (a revoke's SIGTERM) to its own pipe,
    made when it needs one, not to its parent's; and makes watches of its own."""
    if _signals["fd"] is not None:
        signal.set_wakeup_fd(-1)
        os.close(_signals["fd"])
        os.close(_signals["write"])
        _signals.update(fd=None, write=None, stopping=False)
    _forget_shared_in_child()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forget_in_child)


def readable(fds, seconds):
    """Those of `fds` readable within `seconds` (None: no limit). poll() where there is
    one: select() refuses a descriptor numbered 1024 or more, as a busy process has."""
    if not hasattr(select, "poll"):
        return select.select(fds, [], [], seconds)[0]
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    timeout = None if seconds is None else max(0, math.ceil(seconds * 1000))
    return [fd for fd, _ in poller.poll(timeout)]


@functools.cache
def _libc():
    """The C library's functions, on Linux only: inotify is Linux's (FreeBSD 15 has
    one of its own, untested here: the BSDs ring the doorbell). The symbols the
    process already has, so musl's libc too, without find_library running ldconfig."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True)


class Watch:
    """A descriptor readable when a file arrives in a folder (Inotify, Doorbell), whose
    read() gives the names that arrived, or None when some may have been dropped."""

    def names(self, seconds):
        """The names that arrived, after waiting up to `seconds` for one; None when
        some may have been dropped (look at everything then)."""
        if not readable([self.fd], seconds):
            return set()
        names = self.read()
        return None if names is None else set(names)


class Inotify(Watch):
    """Readable when a file is moved into, or finishes being written in, a folder."""

    IN_CLOSE_WRITE, IN_MOVED_TO, IN_NONBLOCK, IN_CLOEXEC = 0x8, 0x80, 0o4000, 0o2000000
    IN_Q_OVERFLOW = 0x4000
    HEADER = struct.Struct("iIII")  # wd, mask, cookie, length of the name

    def __init__(self, fd):
        self.fd = fd

    @classmethod
    def watching(cls, folder):
        """An Inotify on the folder, or None where the OS has no inotify (then poll)."""
        libc = _libc()
        if libc is None or not hasattr(libc, "inotify_init1"):
            return None
        fd = libc.inotify_init1(cls.IN_NONBLOCK | cls.IN_CLOEXEC)
        mask = cls.IN_CLOSE_WRITE | cls.IN_MOVED_TO
        if fd < 0 or libc.inotify_add_watch(fd, os.fsencode(folder), mask) < 0:
            if fd >= 0:
                os.close(fd)
            return None
        return cls(fd)

    def read(self):
        """The names that arrived, in the order they did, without waiting; None when
        the kernel dropped events."""
        data, found, at = drain(self.fd), [], 0
        while at + self.HEADER.size <= len(data):  # struct inotify_event, then its name
            _, mask, _, length = self.HEADER.unpack_from(data, at)
            if mask & self.IN_Q_OVERFLOW:
                return None
            at += self.HEADER.size + length
            found.append(os.fsdecode(data[at - length : at].rstrip(b"\0")))
        return found

    def close(self):
        os.close(self.fd)


class Doorbell(Watch):
    """Where there is no inotify (macOS, the BSDs, a WSL folder without it): a FIFO per
    waiting process in the folder's .doorbells/, into which each process that writes
    a file there (ring()) writes the file's name. Readable, and read, as Inotify is;
    POSIX only (os.mkfifo), so no polling interval between a file and its reader."""

    FOLDER = ".doorbells"
    # As many bytes read at once may mean a full pipe, whose writers dropped names:
    # then look at everything (below the 4 KiB a Linux pipe may be limited to).
    OVERFLOW = 2048
    FLAGS = os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)

    def __init__(self, path, fd, keep):
        self.path, self.fd, self._keep = path, fd, keep

    @classmethod
    def watching(cls, folder):
        """A Doorbell of this process on the folder, or None where FIFOs cannot be
        made (Windows, some network or Windows-mounted folders): then poll."""
        bells = os.path.join(os.fsdecode(folder), cls.FOLDER)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        temporary, path = os.path.join(bells, f".{name}"), os.path.join(bells, name)
        fds = []
        try:
            try:
                os.mkdir(bells, 0o700)
            except FileExistsError:
                pass
            if not stat.S_ISDIR(os.lstat(bells).st_mode):  # a symlink, a file: not ours
                return None
            os.mkfifo(temporary, 0o600)
            fds.append(os.open(temporary, os.O_RDONLY | cls.FLAGS))
            fds.append(os.open(temporary, os.O_WRONLY | cls.FLAGS))  # so never at EOF
            os.rename(temporary, path)  # ringable only now that it has a reader
        except (OSError, AttributeError):  # AttributeError: no os.mkfifo
            for fd in fds:
                os.close(fd)
            _unlink(temporary)
            return None
        return cls(path, *fds)

    def read(self):
        """The names rung, in the order they were, without waiting; None when some
        may have been dropped."""
        data = drain(self.fd)
        if len(data) >= self.OVERFLOW:
            return None
        return [os.fsdecode(name) for name in data.split(b"\n") if name]

    def close(self):
        _unlink(self.path)  # first: a FIFO without its reader is a stale one
        os.close(self.fd)
        os.close(self._keep)


def ring(folder, name):
    """Tell the processes waiting on `folder` without inotify that `name` arrived
    there. Cheap where nobody waits so (no .doorbells/: Linux)."""
    bells = os.path.join(os.fsdecode(folder), Doorbell.FOLDER)
    try:
        found = os.listdir(bells)
    except OSError:
        return
    line = os.fsencode(name) + b"\n"  # under PIPE_BUF: written whole or not at all
    for bell in found:
        if bell.startswith("."):
            continue  # being made
        path = os.path.join(bells, bell)
        try:
            fd = os.open(path, os.O_WRONLY | Doorbell.FLAGS | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            # No reader on this machine: its process died without closing, unless the
            # folder is shared with another machine or VM (a container beside a Mac),
            # where its reader may live: never delete what cannot be proved dead.
            if exc.errno == errno.ENXIO and filesystem(bells) not in SHARED_FILESYSTEMS:
                _unlink(path)
            continue
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, line)
        except OSError:
            pass  # full: its reader finds OVERFLOW bytes and looks at everything
        finally:
            os.close(fd)


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def watching(folder):
    """What tells this process that a file arrived in `folder`: inotify, else a
    doorbell, else None (then poll): on a foreign filesystem (WSL 2's /mnt/c) too."""
    if foreign(folder):  # folders.py
        return None
    return Inotify.watching(folder) or Doorbell.watching(folder)


class Shared:
    """One watch per process and folder for all the threads that wait there: Celery
    gives each thread a result backend of its own, and a watch each would hold an
    inotify instance (Linux allows 128 per user) or a FIFO per thread. One waiting
    thread at a time reads the watch; every waiting thread sees each name that
    arrived since its mark. Kept for the process's life (re-made after a fork)."""

    KEEP = 4096  # names remembered: a waiter further behind looks at everything
    _all = {}
    _made = threading.Lock()

    def __init__(self, watch):
        self.watch = watch
        self.changed = threading.Condition()
        self.names = collections.deque(maxlen=self.KEEP)
        self.count = 0  # names recorded: the mark of the next one
        self.lost = 0  # names before this mark may have been dropped
        self.reading = False

    @classmethod
    def on(cls, folder):
        """This process's Shared on `folder`, or None where nothing can watch it (poll)."""
        key = (os.getpid(), os.fsdecode(folder))
        with cls._made:
            if key not in cls._all:
                watch = watching(folder)
                if watch is None:  # polled, or no descriptor free now: try again later
                    return None
                cls._all[key] = cls(watch)
            return cls._all[key]

    def mark(self):
        """Where a waiter starts: names that arrive after it are news to it."""
        with self.changed:
            return self.count

    def wait(self, mark, seconds):
        """(a new mark, the names that arrived since `mark`: None when some may have
        been dropped, look at everything), after waiting up to `seconds` for one."""
        deadline = time.monotonic() + seconds
        with self.changed:
            while self.count == mark:
                left = deadline - time.monotonic()
                if left <= 0:
                    return mark, set()
                if self.reading:  # another thread reads: it tells us
                    self.changed.wait(left)
                    continue
                self.reading = True
                self.changed.release()
                try:
                    names = self.watch.names(left)
                finally:
                    self.changed.acquire()
                    self.reading = False
                    self.changed.notify_all()  # news, or another thread's turn to read
                if names is None:
                    self.count += 1
                    self.lost = self.count
                else:
                    self.names.extend(names)
                    self.count += len(names)
            if mark < self.lost or self.count - mark > len(self.names):
                return self.count, None
            return self.count, set(list(self.names)[len(self.names) - (self.count - mark) :])


def close_shared():
    """Close this process's shared watches (tests switch how a process watches)."""
    with Shared._made:
        for (pid, _), shared in Shared._all.items():
            if pid == os.getpid():
                shared.watch.close()
        Shared._all = {}


def _forget_shared_in_child():
    """A forked process makes watches of its own; its parent's stay open, unused."""
    Shared._made = threading.Lock()
    Shared._all = {}


class Wakeups:
    """What wakes a consumer: a watch on the queue folder (inotify or a doorbell; None
    where neither can be had: then it polls), and a pipe written to at an
    acknowledgement that frees a prefetch place the consumer waits for."""

    def __init__(self, folder):
        self.watch = watching(folder)
        self._acked = os.pipe()
        for fd in self._acked:
            os.set_blocking(fd, False)
        self._awaiting = False

    def fds(self):
        return [self._acked[0]] + ([self.watch.fd] if self.watch else [])

    def read(self, fd):
        """The names of the files that arrived (None: the kernel dropped some), or []."""
        if self.watch and fd == self.watch.fd:
            return self.watch.read()
        drain(fd)
        return []

    def awaiting_ack(self, channels):
        """Have acknowledged() wake the consumer when every prefetch place is taken.
        Set before the check, so that no acknowledgement is missed."""
        self._awaiting = True
        if all(channel.qos.can_consume() for channel in channels):
            self._awaiting = False

    def acked_or_not(self):
        self._awaiting = False

    def acknowledged(self):
        try:
            if self._awaiting:
                os.write(self._acked[1], b".")
        except OSError:
            pass  # the pipe is full (the waiter wakes up already) or closed

    def close(self):
        for fd in self.fds() + [self._acked[1]]:
            os.close(fd)
