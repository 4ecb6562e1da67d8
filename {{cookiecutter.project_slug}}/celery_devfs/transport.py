"""The celery_devfs broker: a kombu virtual transport on plain files (``devfs://``).

Kombu's hooks only: the work is done by messages.py (file names and contents),
claims.py (taking and giving back messages), listing.py (which files wait in which
queue), bindings.py and queues.py (the control folder), notify.py (waking up).
Direct, topic and fanout exchanges, x-message-ttl, x-expires, x-max-priority,
expiration, consumer counts, auto-delete, Celery's event loop. Transport options:
``data_folder_in`` = ``data_folder_out`` (the queue folder), ``control_folder``,
``quarantine_folder``, ``processed_folder`` with ``store_processed`` (keep
acknowledged files, as kombu's), ``polling_interval`` (without inotify, 0.1 s).
"""

import logging
import os
import select
import time
from functools import partial
from pathlib import Path

from kombu.transport import virtual
from kombu.transport.base import to_rabbitmq_queue_arguments

from . import SCHEME, __version__, messages, notify
from .bindings import Bindings
from .claims import Claims
from .control import Later
from .folders import make_folder, write_private_file
from .listing import Listing
from .queues import Queues, arguments_of

logger = logging.getLogger(__name__)

POLL = 0.1  # seconds between looks at the folder where there is no inotify
RELIST = 1.0  # with inotify: look anyway this often, in case an event was missed


class Channel(virtual.Channel):
    supports_fanout = True

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        options = connection.client.transport_options
        self.folder = options.get("data_folder_in", "data_in")
        self.folder_out = options.get("data_folder_out", self.folder)
        self.control_folder = Path(options.get("control_folder", "control"))
        quarantine = Path(self.folder).parent / "quarantine"
        quarantine = options.get("quarantine_folder", quarantine)
        for folder in (self.folder, self.control_folder, quarantine):
            make_folder(folder)  # or DataFolderError, at connect: not at first use
        processed = options.get("store_processed") and options.get("processed_folder")
        self.claims = Claims(self.folder, quarantine, processed or None)
        self.bindings = Bindings(self.control_folder)
        self.queues = Queues(self.control_folder, self.folder, self.bindings)
        self.later = Later()  # records a full disk held back
        self._auto_delete = set()  # queues deleted when their last consumer leaves
        self._no_ack_queues = set()  # consumed without acknowledgements
        self._consuming = {}  # consumer tag -> queue, as kept in the queue's file

    # Messages --------------------------------------------------------------

    def prepare_message(self, body, priority=None, *args, **kwargs):
        message = super().prepare_message(body, priority, *args, **kwargs)
        if priority is None:  # none, as on RabbitMQ (kombu's virtual transports say 0)
            message["properties"].pop("priority", None)
        return message

    def _put(self, queue, payload, **kwargs):
        priority = payload["properties"].get("priority")
        name, folder = messages.new_name(queue, priority), self.folder_out
        data = messages.encode(payload)
        write_private_file(os.path.join(folder, name), data, os.path.join(folder, f".{name}.tmp"))

    def _put_fanout(self, exchange, payload, routing_key, **kwargs):
        for row in self.get_table(exchange):
            self._put(row.queue, payload, **kwargs)

    def _get(self, queue):
        listing = self.connection.listing
        if not listing.pending.get(queue) and listing.due():
            listing.list(self.connection._callbacks, self.claims.take_back)
        pending = listing.pending.get(queue)
        while pending:
            name = pending.popleft()
            claimed = self.claims.claim(name, self.decode_body)
            if claimed is None:
                continue  # taken by another process, or damaged (quarantined)
            path, message = claimed
            if messages.expired(message, name, self.connection.message_ttl.get(queue)):
                os.remove(path)
                continue
            # The file stays, claimed by this process, until the message is
            # acknowledged: if the process dies first, the message goes back.
            tag = message["properties"]["delivery_tag"]
            self.claims.hold(tag, path, name)
            if queue in self._no_ack_queues:
                self.claims.settle(tag)
            return message
        raise virtual.Empty()

    def _restore(self, message):
        """Put an unacknowledged message back where it was in its queue."""
        if not self.claims.give_back(message.delivery_tag):
            return super()._restore(message)  # not ours: publish it again
        return None

    def _purge(self, queue):
        """Delete the messages waiting in `queue` (not those claimed: they run)."""
        self.connection.listing.forget(queue)
        count = 0
        for name in os.listdir(self.folder):
            if messages.queue_of(name) == queue:
                try:
                    os.remove(os.path.join(self.folder, name))
                    count += 1
                except FileNotFoundError:
                    pass  # taken meanwhile
        return count

    def _size(self, queue):
        return sum(messages.queue_of(name) == queue for name in os.listdir(self.folder))

    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        if no_ack:  # remote-control replies and broadcasts: nothing will acknowledge them
            self._no_ack_queues.add(queue)
        super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)
        self.connection.listing.again()  # inotify names only what arrives from now on
        self._consuming[consumer_tag] = queue
        write = partial(self.queues.add_consumer, queue, consumer_tag)
        self.later.write(consumer_tag, f"Consumer of {queue}", write)

    def consumed(self):
        """The queues this channel consumes."""
        return set(self._consuming.values())

    def basic_cancel(self, consumer_tag):
        super().basic_cancel(consumer_tag)
        self.later.cancel(consumer_tag)
        self._leave({consumer_tag: self._consuming.pop(consumer_tag, None)})

    def basic_get(self, queue, no_ack=False, **kwargs):
        if not self.connection.listing.pending.get(queue):
            self.connection.listing.again()  # not consumed here: no inotify names for it
        message = super().basic_get(queue, no_ack, **kwargs)
        if message is not None and no_ack:
            self.claims.settle(message.delivery_tag)
        return message

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple)
        self.claims.settle(delivery_tag)
        self.connection.acknowledged()

    def basic_reject(self, delivery_tag, requeue=False):
        super().basic_reject(delivery_tag, requeue)  # requeue: _restore puts the file back
        self.claims.settle(delivery_tag)
        self.connection.acknowledged()

    # Exchanges and queues --------------------------------------------------

    def get_table(self, exchange):
        return self.bindings.table(exchange)

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        row = (routing_key or "", pattern or "", queue or "")
        self.later.cancel(("unbind", exchange, row))
        write = partial(self.bindings.bind, exchange, row)
        self.later.write(("bind", exchange, row), f"Binding of {queue} to {exchange}", write)

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        self.connection.listing.forget(queue)
        row = (routing_key or "", pattern or "", queue or "")
        self.later.cancel(("bind", exchange, row))
        write = partial(self.bindings.unbind, exchange, row)
        self.later.write(("unbind", exchange, row), f"Unbinding of {queue} from {exchange}", write)

    def prepare_queue_arguments(self, arguments, **kwargs):
        # Queue(expires=, message_ttl=) as x-expires and x-message-ttl in ms, as
        # kombu's AMQP and Redis transports turn them (kombu's own virtual ones drop them).
        return to_rabbitmq_queue_arguments(arguments, **kwargs)

    def queue_declare(self, queue=None, passive=False, **kwargs):
        if kwargs.get("auto_delete") or kwargs.get("exclusive"):
            self._auto_delete.add(queue)
        declared = super().queue_declare(queue, passive, **kwargs)
        arguments = arguments_of(kwargs.get("arguments"))
        if not passive:  # (re)declared: used now
            self.queues.check(declared.queue, arguments)
            write = partial(self.queues.declare, declared.queue, arguments)
            self.later.write(("arguments", declared.queue), f"Arguments of {queue}", write)
        if "x-message-ttl" in arguments:
            self.connection.message_ttl[declared.queue] = arguments["x-message-ttl"]
        if arguments.get("x-max-priority"):
            self.connection.listing.priorities[declared.queue] = arguments["x-max-priority"]
        return declared._replace(consumer_count=len(self.queues.consumers(declared.queue)))

    def queue_delete(self, queue, if_unused=False, if_empty=False, **kwargs):
        if if_unused and self.queues.consumers(queue):
            return
        super().queue_delete(queue, if_unused, if_empty, **kwargs)
        self.queues.delete(queue)

    def expire(self):
        """Write what a full disk held back; expire queues and old messages (queues.py)."""
        self.later.flush()
        for queue in self.queues.expire(consumed_here=self.connection._callbacks):
            self.connection.listing.forget(queue)

    def _leave(self, consumed):
        """Remove this process's consumers {tag: queue} from their queues' files,
        and delete the auto-delete queues that no one consumes any more."""
        for tag, queue in consumed.items():
            if queue is not None and not self.queues.remove_consumer(queue, tag):
                if queue in self._auto_delete:
                    self._auto_delete.discard(queue)
                    self.queue_delete(queue)

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


class Transport(virtual.Transport):
    Channel = Channel
    driver_type = driver_name = SCHEME  # Celery turns Mingle on by it (__init__.py)
    default_port = 0
    polling_interval = POLL
    states = {}  # one BrokerState per control folder, not one per process
    # Joins Celery's event loop (the worker's Hub): a worker then runs the same
    # asynchronous consumer and prefork pool (AsynPool) as on Redis and RabbitMQ.
    implements = virtual.Transport.implements.extend(
        asynchronous=True, exchange_type=frozenset(["direct", "topic", "fanout"])
    )
    BATCH = 64  # messages delivered per event loop callback, so that nothing waits long

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        options = client.transport_options
        control = os.path.abspath(options.get("control_folder", "control"))
        self.state = self.states.setdefault(control, virtual.BrokerState())
        self.listing = Listing(options.get("data_folder_in", "data_in"))
        self.message_ttl = {}  # queue -> x-message-ttl (ms), as declared in this process
        self._next_expiry = 0.0  # when to look for expired queues and messages again
        self.wakeups = None  # a consumer's (notify.Wakeups); producers need none
        self._loop = self._timer = None

    @property
    def default_connection_params(self):
        # No default hostname, or kombu warns "No hostname was supplied" at every connection.
        return {"port": self.default_port, "hostname": ""}

    def driver_version(self):
        return __version__

    def _consumer_wakeups(self):
        """Made before the first listing, so that no later file is missed."""
        if self.wakeups is None:
            self.wakeups = notify.Wakeups(self.listing.folder)
            self.listing.interval = RELIST if self.wakeups.inotify else self.polling_interval
        return self.wakeups

    # Celery's event loop (a worker) -------------------------------------------

    def register_with_event_loop(self, connection, loop):
        """Deliver when a file arrives (inotify), when an acknowledgement frees a
        prefetch place, and at a timer: the listing that catches a missed event,
        the claims of dead workers, and every listing where there is no inotify."""
        self._unregister()
        self._loop = loop
        wakeups = self._consumer_wakeups()
        for fd in wakeups.fds():
            loop.add_reader(fd, self.on_readable, fd)
        # A stop signal ends the sleep in epoll, so the worker stops at once, not at
        # the next timer (notify.signal_fd says why this way).
        if (signals := notify.signal_fd()) is not None:
            loop.add_reader(signals, notify.read_signals, signals)
        self._timer = loop.call_repeatedly(self.listing.interval, self.on_timer)
        loop.call_soon(self.on_timer)  # what was there before the worker started

    def on_readable(self, fd):
        self.listing.arrived(self.wakeups.read(fd), self._callbacks)
        self._deliver_ready()

    def on_timer(self):
        self.listing.again()
        self._deliver_ready()
        self._expire_now_and_then()

    def _expire_now_and_then(self):
        """Channel.expire, about once a second, by any consumer (worker, monitor)."""
        if time.monotonic() < self._next_expiry or not self.channels:
            return
        self._next_expiry = time.monotonic() + RELIST
        try:
            self.channels[0].expire()
        except OSError as exc:  # a folder deleted under us (make clean): next time
            logger.warning("Could not look for expired queues: %r", exc)

    def _deliver_ready(self):
        """Deliver what the prefetch limits allow, BATCH at a time."""
        self._list_if_idle()
        for _ in range(self.BATCH):
            try:
                self._deliver_oldest()
            except virtual.Empty:
                break
        else:
            self._loop.call_soon(self._deliver_ready)  # more to come: let others run first
        self.wakeups.awaiting_ack(self.channels)

    def _deliver_oldest(self):
        """Deliver the oldest message waiting in any queue consumed here, whatever its
        channel: in the order they were sent, as one broker connection delivers them.
        Kombu's own cycle takes queues in turn, which could run a task before the
        revoke sent just before it (the worker's remote control has a channel of its own)."""
        if self.wakeups is not None and self.wakeups.inotify:
            # What arrived meanwhile may go first: a higher priority, a revoke.
            self.listing.arrived(self.wakeups.inotify.read(), self._callbacks)
        # A priority queue is listed whenever due, backlog or not: a higher priority
        # may have come behind it (without inotify, nothing names it).
        idle = self.listing.priorities or not self.listing.waiting(self._callbacks)
        if self.channels and idle and self.listing.due():
            self.listing.list(self._callbacks, self.channels[0].claims.take_back)
        consumers = [
            (self.listing.head(queue), channel, queue)
            for channel in self.channels
            if channel.qos.can_consume()
            for queue in channel.consumed()
        ]
        # Queues with a file pending first, oldest first; then the others (their
        # _get lists the folder when a listing is due).
        consumers.sort(key=lambda found: (found[0] is None, found[0] or ""))
        for _, channel, queue in consumers:
            try:
                message = channel._get(queue)
            except virtual.Empty:
                continue
            return self._deliver(message, queue)
        raise virtual.Empty()

    def _list_if_idle(self):
        """Without inotify, list when a message is wanted and none of ours is pending;
        with some pending, at the next POLL only, so that a backlog of N messages is
        not listed N times."""
        if not self.wakeups.inotify and not self.listing.waiting(self._callbacks):
            self.listing.again()

    def _unregister(self):
        if self._timer is not None:
            self._timer.cancel()
        if self._loop is not None:
            for fd in [*self.wakeups.fds(), notify.signal_fd()]:
                if fd is not None:
                    self._loop.remove_reader(fd)
        self._loop = self._timer = None

    # The blocking loop (kombu's own consumers, Celery without its event loop) ----

    def drain_events(self, connection, timeout=None):
        """Deliver one message; between listings, sleep until a file arrives."""
        deadline = None if timeout is None else time.monotonic() + timeout
        wakeups = self._consumer_wakeups()
        self._list_if_idle()
        while True:
            try:
                return self._deliver_oldest()
            except virtual.Empty:
                pass
            if notify.stopping():  # return to Celery's loop now, not after its 2 s drain
                raise TimeoutError()
            self._expire_now_and_then()
            left = RELIST if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            # Sleep until a file arrives (inotify), a task is acknowledged while
            # every prefetch place is taken, or the worker starts to stop.
            wakeups.awaiting_ack(self.channels)
            pause = min(left, self.listing.interval)
            signals = [fd for fd in [notify.signal_fd()] if fd is not None]
            ready = select.select([*wakeups.fds(), *signals], [], [], pause)[0]
            wakeups.acked_or_not()
            if not ready:
                self.listing.again()
            for fd in set(ready) & set(wakeups.fds()):
                self.listing.arrived(wakeups.read(fd), self._callbacks)

    def acknowledged(self):
        """Wake the consumer: a prefetch place may be free (called from pool threads too)."""
        if self.wakeups:
            self.wakeups.acknowledged()

    def close_connection(self, connection):
        super().close_connection(connection)
        self._unregister()
        if self.wakeups:
            self.wakeups.close()
        self.wakeups = None
