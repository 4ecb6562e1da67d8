"""kombu's filesystem transport, made safe and quick: the celery_devfs broker.

Features
========
* Type: Virtual
* Supports Direct: Yes
* Supports Topic: Yes
* Supports Fanout: Yes (remote control: celery inspect, control, status)
* Supports Priority: No
* Supports TTL: Yes (x-message-ttl, x-expires, a message's expiration)

Same folders and file names as kombu's ``filesystem://``, with these
changes, each for a problem measured on kombu 5.7.0:

- A message gets its final name only once complete (written under a
  dot-name, 0600, then renamed): a worker never reads a half-written file
  (kombu #1551), and a failed write (a full disk) leaves nothing behind.
- A worker claims a message by renaming it to ``.<name>~<host>~<pid>.claimed``
  in the same folder: exactly one worker wins. The file stays until the
  message is acknowledged; claims of dead processes of this machine go back
  to the queue at the next listing, and unacknowledged messages go back when
  the channel closes.
- One folder listing serves every queue until inotify reports a change:
  draining N messages costs O(N log N), not O(N^2).
- A file that is not a valid kombu message (empty, not JSON, the wrong
  shape, an undecodable body, over 128 MiB, not a regular file, unreadable)
  or a claim name that does not parse is moved to the quarantine folder with
  one log line; a FIFO, a device or a symlink is never opened.
- Names start with the zero-padded time in nanoseconds: first in, first out.
- An idle worker sleeps on inotify (Linux) or polls every 0.1 s, and returns
  at once when the worker starts to stop.
- Broadcast bindings are rewritten atomically under a lock, removed when
  their consumer closes; broadcasts that expired while a worker was down are
  dropped instead of replayed.
- Revokes are kept in the control folder, and a starting worker learns them
  (what Mingle does on RabbitMQ and Redis).
- A message put back in its queue is marked redelivered.
- queue_declare counts the live consumers of the queue, in every process (kept
  in the control folder), and an auto-delete queue goes with its last consumer.
- x-expires and x-message-ttl are honoured as on RabbitMQ, and a message's own
  expiration: what Celery's event, remote-control and reply queues rely on.
- It joins Celery's event loop (asynchronous: the worker's Hub and AsynPool),
  and the shutdown signal wakes that loop at once.

Connection String
=================
``devfs://`` (the folders come from the transport options).

Transport Options
=================
* ``data_folder_in``, ``data_folder_out``: the queue folder (the same one).
* ``control_folder``: broadcast bindings.
* ``quarantine_folder``: where damaged files go (default: ``../quarantine``).
* ``processed_folder``, ``store_processed``: as kombu's (keep acknowledged files).
* ``polling_interval``: seconds between looks without inotify (default 0.1).
"""

import json
import logging
import os
import select
import socket
import time
import uuid
from collections import deque
from functools import partial
from pathlib import Path
from urllib.parse import quote, unquote

from celery.worker import state as worker_state
from kombu.transport import filesystem, virtual
from kombu.transport.base import to_rabbitmq_queue_arguments
from kombu.utils.functional import maybe_list
from kombu.utils.objects import cached_property

from .folders import (
    MAX_FILE_BYTES,
    DamagedFile,
    make_folder,
    read_regular_file,
    write_private_file,
)
from .notify import Inotify, drain, stopping_read

logger = logging.getLogger(__name__)
HOST = socket.gethostname().replace("~", "-")  # with the PID, names a claim's owner
POLL = 0.1  # seconds between looks at the folder where there is no inotify
RELIST = 1.0  # with inotify: look anyway this often, in case an event was missed
REVOKES = ("revoke", "revoke_by_stamped_headers")  # remote-control commands kept
# As long and as many as Celery's worker keeps revokes (celery.worker.state).
REVOKE_EXPIRES, REVOKES_MAX = worker_state.REVOKE_EXPIRES, worker_state.REVOKES_MAX
QUEUE_ARGUMENTS = ("x-expires", "x-message-ttl")  # honoured, as RabbitMQ does, in ms


def check_message(message, decode_body):
    """Raise DamagedFile unless `message` has the shape kombu's virtual transports
    read (kombu.transport.virtual.Message), checked once, where the file is read."""
    if not isinstance(message, dict):
        raise DamagedFile("not a JSON object")
    properties = message.get("properties")
    if not isinstance(properties, dict):
        raise DamagedFile("no properties object")
    info = properties.get("delivery_info")
    if not isinstance(info, dict) or not all(
        isinstance(info.get(key), str) for key in ("exchange", "routing_key")
    ):
        raise DamagedFile("no delivery_info with exchange and routing_key strings")
    if not isinstance(properties.get("delivery_tag"), str):
        raise DamagedFile("no delivery_tag string")
    if not isinstance(message.get("body"), str):
        raise DamagedFile("no body string")
    if not isinstance(message.get("headers"), dict | None):
        raise DamagedFile("headers is not an object")
    for key in ("content-type", "content-encoding"):
        if not isinstance(message.get(key), str | None):
            raise DamagedFile(f"{key} is not a string")
    encoding = properties.get("body_encoding")
    if not isinstance(encoding, str | None):
        raise DamagedFile("body_encoding is not a string")
    try:
        decode_body(message["body"], encoding)
    except Exception as exc:  # binascii.Error, an unknown codec (KeyError), ...
        raise DamagedFile(f"undecodable body ({type(exc).__name__}: {exc})") from exc


class Channel(filesystem.Channel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._auto_delete = set()  # queues deleted when their last consumer leaves
        self._no_ack_queues = set()  # consumed without acknowledgements
        self._consuming = {}  # consumer tag -> queue, as kept in the queue's file
        self._claimed = {}  # delivery tag -> (claimed file, its name in the queue)
        self._unwritten = {}  # key -> (what, write()) held back by a full disk
        self._unwritten_said = False
        for folder in (self.data_folder_in, self.control_folder, self.quarantine_folder):
            make_folder(folder)  # or DataFolderError, at connect: not at first use

    @cached_property
    def quarantine_folder(self):
        default = Path(self.data_folder_in).parent / "quarantine"
        return Path(self.transport_options.get("quarantine_folder", default))

    # Messages --------------------------------------------------------------

    def _put(self, queue, payload, **kwargs):
        name = f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"
        data = json.dumps(payload).encode()
        if len(data) > MAX_FILE_BYTES:
            raise ValueError(f"a message of {len(data)} bytes is over {MAX_FILE_BYTES}")
        folder = self.data_folder_out
        write_private_file(os.path.join(folder, name), data, os.path.join(folder, f".{name}.tmp"))

    def _get(self, queue):
        pending = self.connection.pending.get(queue)
        if not pending and self.connection.listing_due():
            self._list()
            pending = self.connection.pending.get(queue)
        while pending:
            name = pending.popleft()
            claimed = os.path.join(self.data_folder_in, f".{name}~{HOST}~{os.getpid()}.claimed")
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except FileNotFoundError:
                continue  # another worker took it first
            except OSError as exc:  # stays in the queue: the next listing finds it again
                logger.warning("Could not claim message %s (%s): left in its queue", name, exc)
                continue
            message = self._read(claimed, name)
            if message is None:
                continue  # damaged: quarantined
            if _expired_broadcast(message) or self._expired(queue, name, message):
                os.remove(claimed)
                continue
            # The file stays, claimed by this process, until the message is
            # acknowledged: if the process dies first, the message goes back.
            self._claimed[message["properties"]["delivery_tag"]] = (claimed, name)
            if queue in self._no_ack_queues:
                self._settle(message["properties"]["delivery_tag"])
            return message
        raise virtual.Empty()

    def _expired(self, queue, name, message):
        """Older than its queue's x-message-ttl or its own expiration (both in ms, as
        RabbitMQ reads them): never delivered."""
        ttl = [self.connection.message_ttl.get(queue), message["properties"].get("expiration")]
        ttl = [float(t) for t in ttl if isinstance(t, int | float | str) and _number(t)]
        return bool(ttl) and _age_ms(name) > min(ttl)

    def _list(self):
        """One look at the folder: the message files of every queue, oldest first,
        after taking back those of dead workers. A queue this process consumes
        keeps the names it still has (inotify adds the new ones)."""
        found = {}
        try:
            names = os.listdir(self.data_folder_in)
        except FileNotFoundError:  # deleted under us (make clean): back, empty
            make_folder(self.data_folder_in)
            names = []
        for name in names:
            if name.endswith(".claimed"):
                name = self._take_back(name)
            queue = _message_queue(name or ".")
            if queue is not None:  # a dot-name is never a message
                found.setdefault(queue, []).append(name)
        pending, consumed = self.connection.pending, self.connection._callbacks
        for queue, names in found.items():
            if not pending.get(queue) or queue not in consumed:
                pending[queue] = deque(sorted(names))

    def _take_back(self, claimed):
        """Put a message claimed by a dead process of this machine back in its queue."""
        try:
            name, host, pid = claimed[1 : -len(".claimed")].rsplit("~", 2)
            pid = int(pid)
            if pid <= 0 or not claimed.startswith(".") or not name.endswith(".msg"):
                raise ValueError(pid)
        except ValueError:
            self._quarantine(claimed, claimed, "not a claim name: .<message>~<host>~<pid>.claimed")
            return None
        if host != HOST or _alive(pid):
            return None
        ours = os.path.join(self.data_folder_in, f".{name}~{HOST}~{os.getpid()}.claimed")
        try:  # claim it first, so that only one worker puts it back
            os.rename(os.path.join(self.data_folder_in, claimed), ours)
        except OSError:
            return None  # another worker took it back first
        self._put_back(ours, name)
        logger.warning("Message %s of dead process %s put back in its queue", name, pid)
        return name

    def _put_back(self, claimed, name):
        """Return a claimed message to its queue, marked redelivered as RabbitMQ marks
        it (Celery reads delivery_info["redelivered"]). A damaged file goes back as it
        is: the next read quarantines it."""
        try:
            message = json.loads(read_regular_file(claimed))
            message["properties"]["delivery_info"]["redelivered"] = True
            data = json.dumps(message).encode()
        except (ValueError, RecursionError, TypeError, KeyError):
            pass
        else:  # rewritten whole under the claim name: still ours until renamed
            try:
                write_private_file(claimed, data, f"{claimed}.tmp")
            except OSError as exc:  # a full disk: back all the same, a rename needs no room
                logger.warning("Message %s put back not marked redelivered: %s", name, exc)
        os.rename(claimed, os.path.join(self.data_folder_in, name))

    def _read(self, claimed, name):
        """The message in a claimed file, or None when it was damaged (quarantined)."""
        try:
            message = json.loads(read_regular_file(claimed))
            check_message(message, self.decode_body)
        except FileNotFoundError:
            return None  # deleted under us (make purge, make clean)
        except (ValueError, RecursionError) as exc:  # DamagedFile, JSON, Unicode, nesting
            self._quarantine(os.path.basename(claimed), name, exc)
            return None
        return message

    def _quarantine(self, current, name, why):
        """Move a file of the queue folder to the quarantine folder, with one log line."""
        folder = self.quarantine_folder
        make_folder(folder)
        target = folder / name
        if os.path.lexists(target):
            target = folder / f"{name}.{uuid.uuid4().hex}"
        try:
            os.rename(os.path.join(self.data_folder_in, current), target)
        except FileNotFoundError:
            return  # another process moved it first
        except OSError as exc:
            logger.error("Damaged message file %s (%s) left in place: %s", current, why, exc)
            return
        logger.error("Damaged message file (%s) moved to %s", why, target)

    def _settle(self, delivery_tag):
        """The message is acknowledged: delete its file (or keep it in processed/)."""
        claimed, name = self._claimed.pop(delivery_tag, (None, None))
        if claimed is None:
            return
        try:
            if self.store_processed:
                make_folder(self.processed_folder)
                os.replace(claimed, os.path.join(self.processed_folder, name))
            else:
                os.remove(claimed)
        except FileNotFoundError:
            pass  # deleted under us (make clean): nothing left to settle

    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        if no_ack:  # remote-control replies and broadcasts: nothing will acknowledge them
            self._no_ack_queues.add(queue)
        super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)
        self.connection.look_again()  # inotify names only what arrives from now on
        self._consuming[consumer_tag] = queue
        me = [HOST, os.getpid(), consumer_tag]
        add_me = lambda info: {**info, "consumers": [*info["consumers"], me]}  # noqa: E731
        write = partial(self._change_queue, queue, add_me)
        self._write_or_later(consumer_tag, f"Consumer of {queue}", write)

    def _write_or_later(self, key, what, write):
        """write() now or, where the disk is full, at a later write_pending(): as on
        RabbitMQ, a full disk fails no declaration, binding or consumer."""
        self._unwritten[key] = (what, write)
        self.write_pending()

    def write_pending(self):
        """Write the bindings and queue records a full disk held back (called by the
        consumer's timer, each second). Meanwhile a queue counts that consumer out,
        but is never expired while this process consumes it, and every publisher
        writes the bindings of the queues it declares itself."""
        for key, (what, write) in list(self._unwritten.items()):
            try:
                write()
            except OSError as exc:
                if not self._unwritten_said:
                    logger.warning("%s not recorded yet, will retry: %s", what, exc)
                    self._unwritten_said = True
                return
            del self._unwritten[key]
        self._unwritten_said = False

    def basic_cancel(self, consumer_tag):
        super().basic_cancel(consumer_tag)
        self._unwritten.pop(consumer_tag, None)
        self._leave({consumer_tag: self._consuming.pop(consumer_tag, None)})

    def basic_get(self, queue, no_ack=False, **kwargs):
        if not self.connection.pending.get(queue):
            self.connection.look_again()  # not consumed here: no inotify names for it
        message = super().basic_get(queue, no_ack, **kwargs)
        if message is not None and no_ack:
            self._settle(message.delivery_tag)
        return message

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple)
        self._settle(delivery_tag)
        self.connection.acknowledged()

    def basic_reject(self, delivery_tag, requeue=False):
        super().basic_reject(delivery_tag, requeue)  # requeue: _restore puts the file back
        self._settle(delivery_tag)
        self.connection.acknowledged()

    def _restore(self, message):
        """Put an unacknowledged message back where it was in its queue."""
        claimed, name = self._claimed.pop(message.delivery_tag, (None, None))
        if claimed is None:
            return super()._restore(message)  # not ours: publish it again
        try:
            self._put_back(claimed, name)
        except FileNotFoundError:
            logger.warning("Message %s was deleted while claimed; not restored", name)
        return None

    def _purge(self, queue):
        self.connection.pending.pop(queue, None)
        return super()._purge(queue)

    # Broadcast bindings -----------------------------------------------------

    def get_table(self, exchange):
        return self._read_table(self._exchange_file(exchange))

    def _read_table(self, file):
        def check(rows):
            if not isinstance(rows, list) or not all(
                isinstance(row, list) and len(row) == 3 and all(isinstance(v, str) for v in row)
                for row in rows
            ):
                raise DamagedFile("not a list of [routing key, pattern, queue]")
            return [filesystem.exchange_queue_t(*row) for row in rows]

        return self._read_rows(file, check)

    def _read_rows(self, file, check, empty=list):
        """check(the JSON in `file`); empty() when there is none, or it is damaged."""
        try:
            return check(json.loads(read_regular_file(file)))
        except FileNotFoundError:
            return empty()
        except (ValueError, RecursionError) as exc:  # DamagedFile, JSON, Unicode, nesting
            logger.error("Unreadable file %s (%s): ignored", file, exc)
            return empty()

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        row = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        add = lambda rows: rows if row in rows else [row, *rows]  # noqa: E731
        write = partial(self._change_table, exchange, add)
        self._write_or_later(("bind", exchange, row), f"Binding of {queue} to {exchange}", write)
        if exchange.endswith(".pidbox") and self.typeof(exchange).type == "fanout":
            self._learn_revokes(exchange, queue)

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        self.connection.pending.pop(queue, None)
        row = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._change_table(exchange, lambda rows: [r for r in rows if r != row])

    def _change_table(self, exchange, change):
        self._change_rows(self._exchange_file(exchange), self._read_table, change)

    def _change_rows(self, file, read, change, lock=None):
        """Rewrite a control file under a lock (its own, or `lock`), replacing it whole;
        delete it when `change` returns None."""
        lock = lock or file.with_name(f".{file.name}.lock")
        lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(lock_fd, "a+b") as lock_file:
            filesystem.lock(lock_file, filesystem.LOCK_EX)
            try:
                before = read(file)
                rows = change(before)
                if rows is None:
                    file.unlink(missing_ok=True)
                    return
                if rows == before and file.exists():
                    return  # nothing to change
                temporary = file.with_name(f".{file.name}.{os.getpid()}.tmp")
                write_private_file(file, json.dumps(rows).encode(), temporary)
            finally:
                filesystem.unlock(lock_file)

    # Revokes: what Mingle does on RabbitMQ and Redis ------------------------------
    # There, a starting worker asks the others for the tasks they know revoked
    # (Mingle); Celery turns Mingle off for file transports. Here, every revoke
    # broadcast is also kept in control/<exchange>.revokes for as long as Celery
    # keeps a revoke (3 h, 50,000 of them), and a worker learns them when it binds
    # its remote-control queue, as it starts: even when no other worker is up.

    def _put_fanout(self, exchange, payload, routing_key, **kwargs):
        # Kept first: where the disk is full, the revoke fails (OSError) before
        # any worker acts on it, instead of reaching the workers up but no later one.
        if exchange.endswith(".pidbox"):
            command = self._command(payload)
            if command and command.get("method") in REVOKES:
                self._keep_revoke(exchange, command)
        super()._put_fanout(exchange, payload, routing_key, **kwargs)

    def _command(self, payload):
        """The remote-control command in a broadcast (JSON, kombu's default), or None."""
        try:
            body = self.decode_body(payload["body"], payload["properties"].get("body_encoding"))
            command = json.loads(body)
        except (ValueError, TypeError, KeyError, RecursionError):
            return None
        return command if isinstance(command, dict) else None

    def _revokes_file(self, exchange):
        return self._exchange_file(exchange).with_suffix(".revokes")

    def _read_revokes(self, file):
        def check(rows):
            if not isinstance(rows, list) or not all(
                isinstance(r, dict)
                and isinstance(r.get("time"), float)
                and r.get("method") in REVOKES
                and isinstance(r.get("arguments"), dict)
                for r in rows
            ):
                raise DamagedFile("not a list of revokes")
            return [r for r in rows if r["time"] > time.time() - REVOKE_EXPIRES]

        return self._read_rows(file, check)

    def _keep_revoke(self, exchange, command):
        kept = {key: command.get(key) for key in ("method", "arguments", "destination")}
        kept["time"] = time.time()
        file = self._revokes_file(exchange)
        self._change_rows(file, self._read_revokes, lambda rows: [*rows, kept][-REVOKES_MAX:])

    def _learn_revokes(self, exchange, queue):
        """Flag the kept revokes in this worker before it takes any task, as Mingle
        does (worker_state.revoked.update); stamped headers too, which Mingle does not."""
        hostname = queue[: -len(exchange) - 1]  # Celery's queue: <hostname>.<exchange>
        for kept in self._read_revokes(self._revokes_file(exchange)):
            arguments, destination = kept["arguments"], kept.get("destination")
            try:
                if destination and hostname not in destination:
                    continue
                if kept["method"] == "revoke":
                    task_ids = maybe_list(arguments["task_id"])
                    if not all(isinstance(task_id, str) for task_id in task_ids):
                        raise TypeError(f"task ids {task_ids!r}")
                    worker_state.revoked.update(task_ids)
                    continue
                headers = arguments["headers"]
                if isinstance(headers, list):  # Celery's handler takes ["key=value"] too
                    headers = dict(h.split("=", 1) for h in headers)
                for header, stamps in headers.items():
                    known = maybe_list(worker_state.revoked_stamps.get(header) or [])
                    worker_state.revoked_stamps[header] = [*known, *maybe_list(stamps)]
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                logger.error("Damaged revoke in %s ignored: %r", self.control_folder, exc)

    # Queues: consumers, expiry, message TTL -------------------------------------
    # RabbitMQ knows who consumes a queue and what it was declared with; here both
    # are kept in control/<queue>.queue: {"consumers": [[host, pid, consumer tag],
    # ...], "arguments": {"x-expires": ms, "x-message-ttl": ms}}. So queue_declare
    # answers with the consumer count (make demo asks it), an auto-delete queue
    # goes when its last consumer leaves, and as on RabbitMQ a queue declared with
    # x-expires goes (bindings, messages and all) once no consumer has used it for
    # that long, and a message older than x-message-ttl is never delivered: what
    # Celery declares its event, remote-control and reply queues with, so that a
    # killed monitor or worker leaves nothing that grows. A consumer whose process
    # is gone (SIGKILL) is not counted. The file's time is when it was last used.

    def _queue_file(self, queue):
        return self.control_folder / f"{quote(queue, safe='@._-')}.queue"

    def _read_queue(self, file):
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
            if not isinstance(arguments, dict) or not all(
                key in QUEUE_ARGUMENTS and _milliseconds(value) is not None
                for key, value in arguments.items()
            ):
                raise DamagedFile(f"arguments other than {', '.join(QUEUE_ARGUMENTS)} in ms")
            live = [c for c in consumers if c[0] != HOST or _alive(c[1])]
            return {"consumers": live, "arguments": arguments}

        return self._read_rows(file, check, empty=lambda: {"consumers": [], "arguments": {}})

    def _change_queue(self, queue, change):
        """Rewrite the queue's file under the lock that all queue files share (one
        lock file, not one per queue: reply queues come and go by the thousand)."""
        lock = self.control_folder / ".queues.lock"
        self._change_rows(self._queue_file(queue), self._read_queue, change, lock)

    def consumers(self, queue):
        """The live consumers of `queue`, in every process on the data folder."""
        return self._read_queue(self._queue_file(queue))["consumers"]

    def _leave(self, consumed):
        """Remove this process's consumers {tag: queue} from their queues' files,
        and delete the auto-delete queues that no one consumes any more."""
        for tag, queue in consumed.items():
            if queue is not None and not self._remove_consumer(queue, [HOST, os.getpid(), tag]):
                if queue in self._auto_delete:
                    self._auto_delete.discard(queue)
                    self.queue_delete(queue)

    def _remove_consumer(self, queue, consumer):
        """The consumers left on `queue` once `consumer` is gone. The file stays
        while it holds arguments: its time is when the queue was last used."""
        left = []

        def change(info):
            left.extend(c for c in info["consumers"] if c != consumer)
            return {**info, "consumers": left} if left or info["arguments"] else None

        self._change_queue(queue, change)
        return left

    def prepare_queue_arguments(self, arguments, **kwargs):
        # Queue(expires=, message_ttl=) as x-expires and x-message-ttl in ms, as
        # kombu's AMQP and Redis transports turn them (kombu's own virtual ones drop them).
        return to_rabbitmq_queue_arguments(arguments, **kwargs)

    def queue_declare(self, queue=None, passive=False, **kwargs):
        if kwargs.get("auto_delete") or kwargs.get("exclusive"):
            self._auto_delete.add(queue)
        declared = super().queue_declare(queue, passive, **kwargs)
        arguments = {
            key: _milliseconds(value)
            for key, value in (kwargs.get("arguments") or {}).items()
            if key in QUEUE_ARGUMENTS and _milliseconds(value) is not None
        }
        if arguments and not passive:  # (re)declared: used now
            queue, change = declared.queue, lambda info: {**info, "arguments": arguments}
            write = partial(self._change_queue, queue, change)
            self._write_or_later(("arguments", queue), f"Arguments of {queue}", write)
            _touch(self._queue_file(declared.queue))
        if "x-message-ttl" in arguments:
            self.connection.message_ttl[declared.queue] = arguments["x-message-ttl"]
        return declared._replace(consumer_count=len(self.consumers(declared.queue)))

    def queue_delete(self, queue, if_unused=False, if_empty=False, **kwargs):
        if if_unused and self.consumers(queue):
            return
        super().queue_delete(queue, if_unused, if_empty, **kwargs)
        self._change_queue(queue, lambda info: None)

    def expire(self):
        """What RabbitMQ does on its own, for every queue on the data folder: delete
        the queues unused for longer than their x-expires, and the messages older
        than their queue's x-message-ttl. Called about once a second by consumers."""
        try:
            files = [n for n in os.listdir(self.control_folder) if n.endswith(".queue")]
        except FileNotFoundError:
            return
        with_ttl = {}  # unconsumed queues with a TTL (consumers drop old messages at _get)
        for file in files:
            queue = unquote(file[: -len(".queue")])
            info = self._read_queue(self.control_folder / file)
            arguments = info["arguments"]
            if "x-expires" in arguments:
                if info["consumers"]:
                    _touch(self.control_folder / file)  # in use
                else:
                    self._change_queue(queue, lambda info, queue=queue: self._expire(queue, info))
            if "x-message-ttl" in arguments and not info["consumers"]:
                with_ttl[queue] = arguments["x-message-ttl"]
        if with_ttl:
            for name in os.listdir(self.data_folder_in):
                queue = _message_queue(name)
                if queue in with_ttl and _age_ms(name) > with_ttl[queue]:
                    _remove(os.path.join(self.data_folder_in, name))

    def _expire(self, queue, info):
        """Delete `queue` if no one has used it for its x-expires: its bindings, its
        messages, then its file (None). Under the queues' lock, so that no consumer
        or declaration comes in between."""
        try:
            unused = time.time() - os.stat(self._queue_file(queue)).st_mtime
        except FileNotFoundError:
            return None  # another process expired it first
        expires = info["arguments"].get("x-expires")
        consumed_here = queue in self.connection._callbacks  # if not recorded yet
        if info["consumers"] or consumed_here or expires is None or unused * 1000 <= expires:
            return info  # unchanged: not written
        for file in self.control_folder.glob("*.exchange"):
            exchange = file.name[: -len(".exchange")]
            self._change_table(exchange, lambda rows: [r for r in rows if r.queue != queue])
        for name in os.listdir(self.data_folder_in):  # its messages, claimed or not
            message = name[1:].rsplit("~", 2)[0] if name.endswith(".claimed") else name
            if _message_queue(message) == queue:
                _remove(os.path.join(self.data_folder_in, name))
        self.connection.pending.pop(queue, None)
        logger.info("Queue %s expired: unused for %.0f s (x-expires)", queue, unused)
        return None

    def close(self):
        # RabbitMQ drops an auto-delete queue when its last consumer leaves; do
        # the same, so that a stopped worker's remote-control binding goes too.
        consumed, self._consuming = self._consuming, {}
        try:
            self._leave(consumed)
            for queue in self._auto_delete:  # declared, never consumed
                self.queue_delete(queue, if_unused=True)
        except Exception as exc:  # closing must not fail on a stale binding
            logger.debug("Could not unbind %s: %r", self._auto_delete, exc)
        self._auto_delete.clear()
        super().close()


def _alive(pid):
    if os.name == "nt":
        return True  # os.kill(pid, 0) sends Ctrl-C on Windows: never take claims back there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _milliseconds(value):
    """A queue argument in ms (x-expires, x-message-ttl) as a number, or None."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def _message_queue(name):
    """The queue of a message file name, <time>_<uuid>.<queue>.msg, or None."""
    queue, _, suffix = name.partition(".")[2].rpartition(".")
    return queue if suffix == "msg" else None


def _age_ms(name):
    """Milliseconds since the message was sent (its name starts with the time in
    ns); 0 for a name without it."""
    sent = name[:20]
    return (time.time_ns() - int(sent)) / 1e6 if sent.isdigit() else 0


def _number(text):
    try:
        return float(text) >= 0
    except ValueError:
        return False


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


def _expired_broadcast(message):
    """A remote-control broadcast whose sender stopped waiting for replies. An
    `expires` of 0 is kombu's "never" (revoke, and every broadcast without reply)."""
    exchange = message["properties"]["delivery_info"]["exchange"]  # checked by check_message
    expires = (message.get("headers") or {}).get("expires")
    return (
        exchange.endswith(".pidbox")
        and isinstance(expires, int | float)
        and 0 < expires < time.time()
    )


class Transport(filesystem.Transport):
    Channel = Channel
    polling_interval = POLL
    states = {}  # one BrokerState per control folder, not one per process
    # Joins Celery's event loop (the worker's Hub): a worker then runs the same
    # asynchronous consumer and prefork pool (AsynPool) as on Redis and RabbitMQ.
    implements = filesystem.Transport.implements.extend(asynchronous=True)
    BATCH = 64  # messages delivered per event loop callback, so that nothing waits long

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        control = os.path.abspath(client.transport_options.get("control_folder", "control"))
        self.state = self.states.setdefault(control, virtual.BrokerState())
        # Names of message files, per queue, oldest first: from a full listing of
        # the folder (one serves every queue and channel), then from inotify.
        self.pending = {}
        self._next_look = 0.0  # when a full listing is due: now
        self.message_ttl = {}  # queue -> x-message-ttl (ms), as declared in this process
        self._next_expiry = 0.0  # when to look for expired queues and messages again
        # Made by the first consumer (producers need none): an inotify watch on
        # the queue folder, and a pipe written to at an acknowledgement that
        # frees a prefetch place the consumer waits for.
        self._watch = self._acked = None
        self._awaiting_ack = False
        self._loop = self._timer = None

    @property
    def default_connection_params(self):
        # No default hostname, or kombu warns "No hostname was supplied" at every connection.
        return {"port": self.default_port, "hostname": ""}

    def _start_watching(self):
        """Before the first look, so that no later file is missed."""
        if self._watch is None:
            folder = self.client.transport_options.get("data_folder_in", ".")
            self._watch = Inotify.watching(folder) or False
            self._acked = os.pipe()
            for fd in self._acked:
                os.set_blocking(fd, False)
        return self._wakers()

    def _wakers(self):
        """The descriptors that wake a consumer: the acknowledgement pipe, the watch."""
        if not self._acked:
            return []
        return [self._acked[0]] + ([self._watch.fd] if self._watch else [])

    def _awaiting_ack_if_full(self):
        """Have acknowledged() wake the consumer when every prefetch place is taken.
        Set before the check, so that no acknowledgement is missed."""
        self._awaiting_ack = True
        if all(channel.qos.can_consume() for channel in self.channels):
            self._awaiting_ack = False

    # Celery's event loop (a worker) -------------------------------------------

    def register_with_event_loop(self, connection, loop):
        """Deliver when a file arrives (inotify), when an acknowledgement frees a
        prefetch place, and at a timer: the look that catches a missed event, the
        claims of dead workers, and every look where there is no inotify."""
        self._unregister()
        self._loop = loop
        for fd in self._start_watching():
            loop.add_reader(fd, self.on_readable, fd)
        # Celery's SIGTERM handler runs while the loop sleeps in epoll, which Python
        # then resumes: this pipe ends the sleep, so the worker stops at once, not
        # at the next timer.
        loop.add_reader(stopping_read, drain, stopping_read)
        self._timer = loop.call_repeatedly(RELIST if self._watch else POLL, self._look)
        loop.call_soon(self._look)  # what was there before the worker started

    def on_readable(self, fd):
        self._woken_by(fd)
        self._deliver_ready()

    def _woken_by(self, fd):
        """Read what woke the consumer: new file names, or a pipe's bytes."""
        if self._watch and fd == self._watch.fd:
            self._arrived()
        else:
            drain(fd)

    def _arrived(self):
        """Queue the message files inotify names, in the order they arrived. No
        listing: with thousands of files waiting, a listing at each arrival made
        a backlog quadratic."""
        names = self._watch.read()
        if names is None:  # the kernel dropped events: list everything again
            self.pending.clear()
            self.look_again()
            return
        for name in names:
            queue = _message_queue(name)
            if queue in self._callbacks:  # ours to consume (a dot-name is no message)
                self.pending.setdefault(queue, deque()).append(name)

    def _look(self):
        self.look_again()
        self._deliver_ready()
        self._expire_now_and_then()

    def _expire_now_and_then(self):
        """Channel.expire, about once a second, by any consumer (worker, monitor)."""
        if time.monotonic() < self._next_expiry or not self.channels:
            return
        self._next_expiry = time.monotonic() + RELIST
        try:
            for channel in self.channels:
                channel.write_pending()  # what a full disk held back
            self.channels[0].expire()
        except OSError as exc:  # a folder deleted under us (make clean): next time
            logger.warning("Could not look for expired queues: %r", exc)

    def _deliver_ready(self):
        """Deliver what the prefetch limits allow, BATCH at a time."""
        self._poll_if_idle()
        for _ in range(self.BATCH):
            try:
                self.cycle.get(self._deliver)
            except virtual.Empty:
                break
        else:
            self._loop.call_soon(self._deliver_ready)  # more to come: let others run first
        self._awaiting_ack_if_full()

    def _unregister(self):
        if self._timer is not None:
            self._timer.cancel()
        if self._loop is not None:
            for fd in [*self._wakers(), stopping_read]:
                self._loop.remove_reader(fd)
        self._loop = self._timer = None

    # The blocking loop (kombu's own consumers, Celery without its event loop) ----

    def drain_events(self, connection, timeout=None):
        """Deliver one message; between looks, sleep until a file arrives."""
        deadline = None if timeout is None else time.monotonic() + timeout
        wakers = self._start_watching()
        self._poll_if_idle()
        while True:
            try:
                return self.cycle.get(self._deliver, timeout=timeout)
            except virtual.Empty:
                pass
            if _stopping():  # return to Celery's loop now, not after its 2 s drain
                raise TimeoutError()
            self._expire_now_and_then()
            left = RELIST if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            # Sleep until a file arrives (inotify), a task is acknowledged while
            # every prefetch place is taken, or the worker starts to stop.
            self._awaiting_ack_if_full()
            pause = min(left, RELIST if self._watch else POLL)
            ready = select.select([*wakers, stopping_read], [], [], pause)[0]
            self._awaiting_ack = False
            if not ready:
                self.look_again()
            for fd in set(ready) & set(wakers):
                self._woken_by(fd)

    def look_again(self):
        """List the folder at the next look for a message in an empty queue."""
        self._next_look = 0.0

    def _poll_if_idle(self):
        """Without inotify, look when a message is wanted and none of ours is pending
        (with some pending, the next look is at POLL: a listing at every call made a
        backlog quadratic)."""
        if self._watch is False and not any(self.pending.get(q) for q in self._callbacks):
            self.look_again()

    def listing_due(self):
        """Is a full listing due? For a process that does not consume (a producer,
        basic_get), always. For a consumer: at its start, when events were lost,
        at its timer, and at least every RELIST (POLL without inotify) while
        events keep it busy; inotify names the files in between."""
        now = time.monotonic()
        due = self._watch is None or now >= self._next_look
        if due:
            self._next_look = now + (RELIST if self._watch else POLL)
        return due

    def acknowledged(self):
        """Wake the consumer: a prefetch place may be free (called from pool threads too)."""
        try:
            if self._acked and self._awaiting_ack:
                os.write(self._acked[1], b".")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (the waiter wakes up already) or closed

    def close_connection(self, connection):
        super().close_connection(connection)
        self._unregister()
        for fd in [*(self._acked or ()), *([self._watch.fd] if self._watch else [])]:
            os.close(fd)
        self._watch = self._acked = None


def _stopping():
    """Celery asked the worker to stop (a flag holds the exit code: 0 is not False)."""
    flags = (worker_state.should_stop, worker_state.should_terminate)
    return any(flag is not None and flag is not False for flag in flags)
