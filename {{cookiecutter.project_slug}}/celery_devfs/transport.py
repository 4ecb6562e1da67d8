"""The celery_devfs broker: a kombu virtual transport on plain files (``devfs://``).

Kombu's hooks only: the channel's are in channel.py; the Transport here delivers,
from listing.py (which files wait in which queue) and notify.py (waking up), in
Celery's event loop or kombu's blocking one.
Direct, topic and fanout exchanges, x-message-ttl, x-expires, x-max-priority,
expiration, consumer counts, auto-delete, Celery's event loop. Transport options:
``data_folder_in`` = ``data_folder_out`` (the queue folder), ``control_folder``,
``quarantine_folder``, ``processed_folder`` with ``store_processed`` (keep
acknowledged files, as kombu's), ``polling_interval`` (without inotify, 0.1 s).
"""

import logging
import os
import time

from kombu.transport import virtual

from . import SCHEME, __version__, notify
from .channel import Channel
from .listing import Listing

logger = logging.getLogger(__name__)

POLL = 0.1  # seconds between looks at the folder where there is no inotify
RELIST = 1.0  # with inotify: look anyway this often, in case an event was missed


class Transport(virtual.Transport):
    Channel = Channel
    driver_type = driver_name = SCHEME  # Celery turns Mingle on by it (__init__.py)
    default_port = 0
    polling_interval = POLL
    states = {}  # one BrokerState per control folder, not one per process
    # Joins Celery's event loop (the worker's Hub): a worker then runs the same
    # asynchronous consumer and prefork pool (AsynPool) as on Redis and RabbitMQ.
    implements = virtual.Transport.implements.extend(
        asynchronous=True, exchange_type=frozenset(["direct", "topic", "fanout", "headers"])
    )
    # A channel error here is the broker's answer, as RabbitMQ's (PreconditionFailed for
    # a message too large, ResourceLocked): raised as it is. kombu's virtual transports
    # leave these unset, and kombu then retries any channel error as a lost connection
    # and raises OperationalError.
    recoverable_connection_errors = virtual.Transport.connection_errors
    recoverable_channel_errors = ()
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
            self.listing.interval = RELIST if self.wakeups.watch else self.polling_interval
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
        if self._deliver_up_to(self.BATCH) == self.BATCH:
            self._loop.call_soon(self._deliver_ready)  # more to come: let others run first
        self.wakeups.awaiting_ack(self.channels)

    def _deliver_up_to(self, most):
        """Deliver up to `most` messages, oldest first; how many there were."""
        for delivered in range(most):
            try:
                self._deliver_oldest()
            except virtual.Empty:
                return delivered
        return most

    def _deliver_oldest(self):
        """Deliver the oldest message waiting in any queue consumed here, whatever its
        channel: in the order they were sent, as one broker connection delivers them.
        Kombu's own cycle takes queues in turn, which could run a task before the
        revoke sent just before it (the worker's remote control has a channel of its own)."""
        if self.wakeups is not None and self.wakeups.watch:
            # What arrived meanwhile may go first: a higher priority, a revoke.
            self.listing.arrived(self.wakeups.watch.read(), self._callbacks)
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
        if not self.wakeups.watch and not self.listing.waiting(self._callbacks):
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
        """Deliver what is ready, as one read of a RabbitMQ connection does (kombu's
        virtual transports: one message): up to what the prefetch limits allowed when
        the call began (an acknowledgement meanwhile lets RabbitMQ send more, which a
        later read gets), at most BATCH; between listings, sleep until a file arrives."""
        deadline = None if timeout is None else time.monotonic() + timeout
        wakeups = self._consumer_wakeups()
        self._list_if_idle()
        while True:
            room = sum(self._room(channel) for channel in self.channels if channel.consumed())
            if self._deliver_up_to(max(1, min(room, self.BATCH))):
                return
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
            ready = notify.readable([*wakeups.fds(), *signals], pause)
            wakeups.acked_or_not()
            if not ready:
                self.listing.again()
            for fd in set(ready) & set(wakeups.fds()):
                self.listing.arrived(wakeups.read(fd), self._callbacks)

    def _room(self, channel):
        """How many messages `channel` may take now (its prefetch limit; none: BATCH)."""
        room = channel.qos.can_consume_max_estimate()
        return self.BATCH if room is None else room

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
