"""Queues as RabbitMQ keeps them: who consumes each, what it was declared with, and
when it expires.

Each queue's consumers and arguments are kept in control/<queue>.queue:
{"consumers": [[owner, pid, consumer tag], ...] (owners.py; an older version wrote the
host), "arguments": {"x-expires": ms,
"x-message-ttl": ms, "x-max-priority": n}, "declared": true, "name": queue} (its file
is named as names.py keeps the name on disk); the file's time is
when the queue was last used. So queue_declare answers with the number of live
consumers (make demo asks it), a declaration with other arguments than the queue's
fails as on RabbitMQ (PRECONDITION_FAILED), an
auto-delete queue goes with its last consumer, a queue declared with x-expires goes
(bindings, messages and all) once no consumer has used it for that long, and a
message older than x-message-ttl is never delivered: what Celery declares its
event, remote-control and reply queues with, so that a killed monitor or worker
leaves nothing that grows. A consumer whose process has ended (SIGKILL) is not counted.
"""

import logging
import os
import time

from amqp.exceptions import PreconditionFailed, ResourceLocked

from . import claims, control, messages, names, owners
from .claims import HOST
from .folders import DamagedFile, DataFolderError, checked, remove_data_folder

logger = logging.getLogger(__name__)
# Honoured as RabbitMQ does: the first two in ms, the priorities from 0 to the third.
ARGUMENTS = ("x-expires", "x-message-ttl", "x-max-priority")


def arguments_of(declared):
    """The arguments of a declaration that are honoured here, as numbers."""
    return {
        key: messages.milliseconds(value)
        for key, value in (declared or {}).items()
        if key in ARGUMENTS and messages.milliseconds(value) is not None
    }


class Queues:
    def __init__(self, folder, queue_folder, bindings):
        self.folder = folder  # the control folder
        self.queue_folder = queue_folder
        self.bindings = bindings
        # One lock for every queue file, not one per queue: reply queues come and go
        # by the thousand.
        self.lock = folder / ".queues.lock"

    def file(self, queue):
        return self.folder / f"{names.on_disk(queue)}.queue"

    def read(self, file):
        def check(info):
            consumers = info.get("consumers") if isinstance(info, dict) else None
            arguments = info.get("arguments", {}) if isinstance(info, dict) else None
            if not isinstance(consumers, list) or not all(
                isinstance(c, list)
                and len(c) == 3
                and isinstance(c[0], str)
                and isinstance(c[1], int)
                and isinstance(c[2], str)
                for c in consumers
            ):
                raise DamagedFile("not {consumers: [[host, pid, tag], ...]}")
            if not isinstance(arguments, dict) or arguments_of(arguments) != arguments:
                raise DamagedFile(f"arguments other than numbers for {', '.join(ARGUMENTS)}")
            declared = info.get("declared", bool(arguments))
            if not isinstance(declared, bool):
                raise DamagedFile("declared is not true or false")
            name, exclusive = info.get("name"), info.get("exclusive")
            if not isinstance(name, str | None):
                raise DamagedFile("name is not a string")
            if exclusive is not None and not (
                isinstance(exclusive, list) and len(exclusive) == 2
                and isinstance(exclusive[0], str) and isinstance(exclusive[1], int)
            ):  # fmt: skip
                raise DamagedFile("exclusive is not [owner, pid]")
            live = [c for c in consumers if not self.ended(c)]
            if exclusive and self.ended([*exclusive, ""]):
                exclusive = None
            return {"consumers": live, "arguments": arguments, "declared": declared,
                    "name": name, "exclusive": exclusive}  # fmt: skip

        empty = {"consumers": [], "arguments": {}, "declared": False, "name": None,
                 "exclusive": None}  # fmt: skip
        return control.read(file, check, lambda: dict(empty))

    def change(self, queue, change):
        def named(info):  # the name itself: a long one's file is named by its hash
            after = change(info)
            return after if after is None or after is info else {**after, "name": queue}

        control.change(self.file(queue), self.read, named, self.lock)

    def ended(self, consumer):
        """Has a consumer's process ended? An older version's record names its host."""
        who, pid, _ = consumer
        return claims.ended(self.folder, who if owners.TOKEN.fullmatch(who) else (who, pid))

    def me(self, tag):
        return [owners.token(self.folder), os.getpid(), tag]

    def consumers(self, queue):
        """The live consumers of `queue`, in every process on the data folder."""
        return self.read(self.file(queue))["consumers"]

    def live_pids(self):
        """The processes on this machine that consume from a queue of the folder."""
        try:
            files = [n for n in os.listdir(self.folder) if n.endswith(".queue")]
        except FileNotFoundError:
            return []
        consumers = (c for f in files for c in self.read(self.folder / f)["consumers"])
        here = (pid for who, pid, _ in consumers if owners.TOKEN.fullmatch(who) or who == HOST)
        return sorted(set(here))

    def add_consumer(self, queue, tag):
        me = self.me(tag)
        self.change(queue, lambda info: {**info, "consumers": [*info["consumers"], me]})

    def remove_consumer(self, queue, tag):
        """The consumers left on `queue` once this process's `tag` is gone. The file
        stays while it holds arguments: its time is when the queue was last used."""
        me, left = self.me(tag), []

        def change(info):
            left.extend(c for c in info["consumers"] if c != me)
            return {**info, "consumers": left} if left or info["declared"] else None

        self.change(queue, change)
        return left

    def check(self, queue, arguments):
        """Raise amqp's PreconditionFailed, as RabbitMQ does, when `queue` was declared
        with other arguments than these."""
        info = self.read(self.file(queue))
        if not info["declared"]:
            return
        for key in ARGUMENTS:
            now, kept = arguments.get(key), info["arguments"].get(key)
            if now != kept:
                raise PreconditionFailed(
                    f"PRECONDITION_FAILED - inequivalent arg {key!r} for queue {queue!r}: "
                    f"received {'none' if now is None else now} but current is "
                    f"{'none' if kept is None else kept} (as on RabbitMQ); declare it as "
                    f"before, or delete the queue and its messages first "
                    f"(celery amqp queue.delete {queue})",
                    (50, 10),  # Queue.declare
                )

    def take_exclusive(self, queue):
        """Declare `queue` as this process's own (an exclusive queue); ResourceLocked,
        as on RabbitMQ, while another live process holds it: a worker's remote-control
        queue, so that a second worker of the same name stops."""
        me = self.me("")[:2]

        def take(info):
            holder = info["exclusive"]
            if holder and holder != me:
                raise ResourceLocked(
                    f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue "
                    f"{queue!r} in vhost '/' (process {holder[1]} holds it)",
                    (50, 10),  # Queue.declare
                )
            return {**info, "exclusive": me}

        self.change(queue, take)

    def declare(self, queue, arguments):
        """Keep the arguments of a (re)declaration; it counts as a use."""
        self.change(queue, lambda info: {**info, "arguments": arguments, "declared": True})
        _touch(self.file(queue))

    def delete(self, queue, with_messages=True):
        """Delete `queue`'s messages (claimed too: a worker's acknowledgement then finds
        nothing, as on RabbitMQ), then its file. Its bindings: Bindings.forget."""
        count = self.remove_messages(queue) if with_messages else 0
        self.change(queue, lambda info: None)
        return count

    def remove_messages(self, queue):
        """Delete the message files of `queue`, claimed or not; how many there were."""
        listed = os.listdir(self.queue_folder)
        found = [n for n in listed if messages.queue_of(claims.message_of(n) or ".") == queue]
        for name in found:
            _remove(os.path.join(self.queue_folder, name))
        return len(found)

    def expire(self, consumed_here):
        """What RabbitMQ does on its own, for every queue on the data folder: delete the
        queues unused for longer than their x-expires, and the messages older than their
        queue's x-message-ttl. Returns the queues deleted. Called about once a second by
        consumers (workers, monitors); `consumed_here`: never expired, even if a full
        disk kept their consumers out of the files."""
        try:
            files = [n for n in os.listdir(self.folder) if n.endswith(".queue")]
        except FileNotFoundError:
            return []
        gone, with_ttl = [], {}  # unconsumed queues with a TTL: consumers drop old messages
        for file in files:
            info = self.read(self.folder / file)
            queue = info["name"] or names.name_of(file[: -len(".queue")])
            arguments = info["arguments"]
            if "x-expires" in arguments:
                if info["consumers"] or queue in consumed_here:
                    _touch(self.folder / file)  # in use
                else:
                    self.change(queue, lambda info, queue=queue: self._expire(queue, info, gone))
            if "x-message-ttl" in arguments and not info["consumers"]:
                with_ttl[queue] = arguments["x-message-ttl"]
        if with_ttl:
            for name in os.listdir(self.queue_folder):
                queue = messages.queue_of(name)
                if queue in with_ttl and messages.age_ms(name) > with_ttl[queue]:
                    _remove(os.path.join(self.queue_folder, name))
        return gone

    def _expire(self, queue, info, gone):
        """Delete `queue` if no one has used it for its x-expires: its bindings, its
        messages, then its file (None). Under the queues' lock, so that no consumer
        or declaration comes in between."""
        try:
            unused = time.time() - os.stat(self.file(queue)).st_mtime
        except FileNotFoundError:
            return None  # another process expired it first
        expires = info["arguments"].get("x-expires")
        if info["consumers"] or expires is None or unused * 1000 <= expires:
            return info  # unchanged: not written
        self.bindings.forget(queue)
        self.remove_messages(queue)  # claimed or not
        logger.info("Queue %s expired: unused for %.0f s (x-expires)", queue, unused)
        gone.append(queue)
        return None


def _touch(path):
    try:
        os.utime(path)
    except FileNotFoundError:
        pass  # expired or deleted meanwhile


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass  # another process took it


def remove_data_folders(data_dir, protect=()):
    """Delete what celery_devfs and the project wrote in the data folder, then the
    folder once empty (folders.remove_data_folder). Refuses (DataFolderError) while a
    process on this machine consumes from it: a worker would go on running tasks,
    deaf to remote control."""
    path = checked(data_dir, protect)
    if path.is_dir() and (users := Queues(path / "control", path / "queue", None).live_pids()):
        pids = ", ".join(map(str, users))
        raise DataFolderError(
            f"is in use by process {pids} (a worker, Flower or celery events); stop it first"
        )
    return remove_data_folder(path, protect)
