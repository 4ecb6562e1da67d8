"""The celery_devfs result backend: Celery's file backend, made safe and quick.

URL: ``devfs:///absolute/path/to/results``. Same files as Celery's ``file://``
backend (a Celery key-value backend, one file per key), with these changes:

- A result file is written under a temporary name (owner-only), then
  renamed: a reader never sees it empty or half-written (a finished task
  would look PENDING), and a failed write (a full disk) leaves nothing behind.
- A result file that is not a regular file (a FIFO, a folder) is never
  opened: it reads as no result, with one log line.
- Chord parts are counted in a locked counter file, so a chord's body starts
  as soon as its last part ends, instead of `celery.chord_unlock` polling
  every second. (Windows has no flock: chords fall back to chord_unlock there.)
- `result.get()` returns as soon as the result file appears (inotify on
  Linux, the doorbell elsewhere, through one watch per process shared by its
  threads; where neither can be had it looks every few milliseconds instead of
  every 0.5 s).
- A chord counts its parts without reading the whole group at each part, so
  a chord with a large header finishes in linear, not quadratic, time.
- Results expire by themselves after ``result_expires``, as Redis keys do: each
  worker deletes the expired ones every EXPIRY_LOOK seconds at most, beat or not,
  and lists the folder only once the oldest result kept may have expired.
"""

import errno
import logging
import os
import stat
import time
import uuid

from celery import states
from celery.backends.base import KeyValueStoreBackend
from celery.exceptions import ImproperlyConfigured
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import GroupResult
from kombu.utils.encoding import bytes_to_str, ensure_bytes

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from . import notify, space
from .folders import DamagedFile, read_regular_file, write_private_file

logger = logging.getLogger(__name__)
POLL = 0.005  # seconds between looks while waiting for results, without inotify
EXPIRY_LOOK = 30.0  # seconds at most between a worker's looks for expired results
FULL_LOOK = 1.0  # seconds between looks at every awaited result, woken or not


def expire_results(sender, **kwargs):
    """At a worker's start (Celery's worker_ready: `sender` is its consumer), have it
    delete expired results now and then, as Redis drops a key at its TTL."""
    backend = sender.app.backend
    if isinstance(backend, Backend) and backend.expires:
        every = min(EXPIRY_LOOK, backend.expires)
        sender.timer.call_repeatedly(every, backend.cleanup_quietly)


class Backend(KeyValueStoreBackend):
    # Read by KeyValueStoreBackend.__init__, so it must be a class attribute.
    implements_incr = fcntl is not None
    supports_result_compression = True  # files hold bytes: result_compression applies
    # GroupResult.get() waits for every result (get_many), as on Redis, instead of
    # one result after another, which raises a parent's error before the group ends.
    supports_native_join = True

    def __init__(self, url=None, **kwargs):
        super().__init__(url=url, **kwargs)
        path = (url or "").partition("://")[2]  # devfs:///path/to/results
        if not path:
            raise ImproperlyConfigured(
                "You need to configure a path for the devfs result backend: "
                "devfs:///absolute/path/to/results"
            )
        # Asked, not tried with a file as Celery's file backend does: on a full disk
        # a worker still starts (a task's writes wait for room: space.py).
        if not (os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)):
            raise ImproperlyConfigured(
                f"The devfs results folder {path} is not a folder this user can write to"
            )
        self.path = os.fsencode(path)

    def __reduce__(self, args=(), kwargs=None):
        return super().__reduce__(args, {**(kwargs or {}), "url": self.url})

    def _filename(self, key):
        return os.path.join(self.path, ensure_bytes(key))

    def mget(self, keys):
        return [self.get(key) for key in keys]

    def cleanup(self):
        """Delete the results older than result_expires (beat's celery.backend_cleanup)."""
        if not self.expires:
            return
        started = time.time()
        cutoff, oldest = started - self.expires, started
        prefixes = (self.task_keyprefix, self.group_keyprefix, self.chord_keyprefix)
        for entry in os.scandir(self.path):
            try:
                if not entry.name.startswith(prefixes):
                    continue
                if (written := entry.stat().st_mtime) <= cutoff:  # as old as result_expires
                    os.remove(entry.path)
                else:
                    oldest = min(oldest, written)
            except FileNotFoundError:
                pass  # deleted meanwhile
        # No result kept expires before the oldest one, and every later one is newer
        # than this look: none to look for until then (a look stats every file).
        self._next_look = oldest + self.expires

    def cleanup_quietly(self):
        """A worker's look now and then (expire_results), when a result may have expired."""
        if time.time() < getattr(self, "_next_look", 0):
            return
        try:
            self.cleanup()
        except OSError as exc:  # the folder deleted under us (make clean): next time
            logger.warning("Could not look for expired results: %r", exc)

    def kept(self):
        """How many task results the folder holds."""
        names = (entry.name for entry in os.scandir(self.path))  # bytes, as the prefix
        return sum(1 for name in names if name.startswith(self.task_keyprefix))

    def exception_safe_to_retry(self, exc):
        # What Celery retries when a project sets result_backend_always_retry: a full
        # disk (a running task's writes wait for space anyway: space.py).
        return space.is_full(exc)

    def set(self, key, value):
        temporary = os.path.join(self.path, f".tmp-{uuid.uuid4().hex}".encode())
        path = self._filename(key)
        write_private_file(path, ensure_bytes(value), temporary)
        notify.ring(self.path, os.path.basename(path))  # the waiters without inotify

    def get(self, key):
        try:
            return read_regular_file(self._filename(key))
        except FileNotFoundError:
            return None
        except DamagedFile as exc:
            path = os.fsdecode(self._filename(key))
            logger.error("Damaged result file %s (%s): read as no result", path, exc)
            return None

    def delete(self, key):
        try:
            os.remove(self._filename(key))
        except FileNotFoundError:
            pass  # already gone: deleting twice is fine

    def incr(self, key):
        """Add one to a counter file, under a lock on the file itself. A full disk
        leaves the count as it was (a task's part waits for space: space.py)."""
        path = self._filename(key)
        return space.write(lambda: self._incr(path), os.fsdecode(path))

    def _incr(self, path):
        # Never block on a FIFO or follow a symlink put in the results folder.
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
        fd = os.open(path, flags, 0o600)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise DamagedFile(f"chord counter {os.fsdecode(path)} is not a file")
            fcntl.flock(fd, fcntl.LOCK_EX)
            value = int(os.read(fd, 64) or 0) + 1
            text = str(value).encode()
            # Written over the old count, then cut to length: the count never goes
            # missing, as it would if a full disk failed a write after truncating.
            if os.pwrite(fd, text, 0) != len(text):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fsdecode(path))
            os.ftruncate(fd, len(text))
            return value
        finally:
            os.close(fd)  # also releases the lock

    def set_chord_size(self, group_id, chord_size):
        # Celery calls this just before it sends a chord's last header task.
        self.set(self.get_key_for_group(group_id, ".size"), str(chord_size))

    def on_chord_part_return(self, request, state, result, **kwargs):
        # Celery's own version reads the whole group back at every part: with a
        # large header that is quadratic. Count the parts here, and let it do
        # its work only for the last one, or while the size is not known yet.
        size_key = self.get_key_for_group(request.group or "", ".size")
        size = self.implements_incr and request.group and self.get(size_key)
        if not size:
            return super().on_chord_part_return(request, state, result, **kwargs)
        key = self.get_key_for_chord(request.group)
        if self.incr(key) < int(size):
            return None
        # The last part: Celery's version below counts it again, against the
        # number of results in the group, which is smaller than the number of
        # parts when the header holds a group (a chain ending in one, say).
        group = GroupResult.restore(request.group, backend=self)
        if group is not None:
            self.set(key, str(len(group) - 1))
        try:
            return super().on_chord_part_return(request, state, result, **kwargs)
        finally:
            self.delete(size_key)

    def wait_for(self, task_id, timeout=None, interval=0.5, no_ack=True, on_interval=None):
        shared = notify.Shared.on(self.path)  # one per process, whatever the threads
        if not shared:
            return super().wait_for(task_id, timeout, min(interval, POLL), no_ack, on_interval)
        deadline = None if timeout is None else time.monotonic() + timeout
        mark = shared.mark()  # before the read: a result written after it wakes us
        while True:
            meta = self.get_task_meta(task_id)
            if meta["status"] in states.READY_STATES:
                return meta
            if on_interval:
                on_interval()
            left = interval if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise CeleryTimeoutError("The operation timed out.")
            # At most `interval` asleep: a wake-up lost (a writer out of descriptors)
            # costs that, never the timeout.
            mark, _ = shared.wait(mark, min(left, interval))

    def get_many(
        self,
        task_ids,
        timeout=None,
        interval=0.5,
        no_ack=True,
        on_message=None,
        on_interval=None,
        max_iterations=None,
        READY_STATES=states.READY_STATES,
    ):
        """Celery's, but a result is read when its file arrives (inotify), not every
        file at every interval; and all that are still awaited once a second, so a
        wake-up lost (a writer out of descriptors) costs a second, not the timeout."""
        shared = notify.Shared.on(self.path)  # one per process, whatever the threads
        if not shared:
            yield from super().get_many(
                task_ids, timeout, min(interval, POLL), no_ack, on_message, on_interval,
                max_iterations, READY_STATES,
            )  # fmt: skip
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        waiting = {bytes_to_str(task_id): task_id for task_id in task_ids}
        look_at, iterations = list(waiting), 0
        prefix = os.fsdecode(self.task_keyprefix)
        mark, everything = shared.mark(), time.monotonic() + FULL_LOOK
        while waiting:
            keys = [waiting[task_id] for task_id in look_at]
            found = self._mget_to_results(
                self.mget([self.get_key_for_task(key) for key in keys]), keys, READY_STATES
            )
            self._cache.update(found)
            for key, meta in found.items():
                waiting.pop(bytes_to_str(key), None)
                if on_message is not None:
                    on_message(meta)
                yield bytes_to_str(key), meta
            if not waiting:
                return
            left = interval if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise CeleryTimeoutError(f"Operation timed out ({timeout})")
            if on_interval:
                on_interval()
            mark, names = shared.wait(mark, min(left, interval, everything - time.monotonic()))
            if names is None or time.monotonic() >= everything:
                names, everything = None, time.monotonic() + FULL_LOOK
            arrived = None if names is None else {n.removeprefix(prefix) for n in names}
            look_at = [t for t in waiting if arrived is None or t in arrived]
            iterations += 1
            if max_iterations and iterations >= max_iterations:
                return
