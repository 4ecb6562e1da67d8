"""The celery_devfs broker's channel: kombu's virtual Channel hooks, handing the work
to messages.py (file names and contents), claims.py (taking and giving back
messages), bindings.py and queues.py (the control folder). Its Transport, with the
listing and the event loops, is in transport.py."""

import logging
import os
from functools import partial
from pathlib import Path

from amqp.exceptions import ChannelError, NotFound, PreconditionFailed
from kombu.transport import virtual
from kombu.transport.base import to_rabbitmq_queue_arguments

from . import exchanges, messages, notify, owners
from .bindings import Bindings
from .claims import Claims
from .control import Later
from .folders import make_folder, write_private_file
from .queues import Queues, arguments_of

logger = logging.getLogger(__name__)


class Channel(virtual.Channel):
    supports_fanout = True
    exchange_types = exchanges.TYPES

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        options = connection.client.transport_options
        if "data_folder_in" not in options:  # kombu's filesystem transport: ./data_in
            raise ChannelError(
                "devfs:// has no data folder: take its settings from "
                "celery_devfs.celery_settings(data_dir)"
            )
        self.folder = options["data_folder_in"]
        self.folder_out = options.get("data_folder_out", self.folder)
        self.control_folder = Path(options.get("control_folder", "control"))
        self.max_message_size = options.get("max_message_size", messages.MAX_MESSAGE_BYTES)
        quarantine = Path(self.folder).parent / "quarantine"
        quarantine = options.get("quarantine_folder", quarantine)
        for folder in (self.folder, self.control_folder, quarantine):
            make_folder(folder)  # or DataFolderError, at connect: not at first use
        processed = options.get("store_processed") and options.get("processed_folder")
        self.claims = Claims(self.folder, quarantine, processed or None, self.control_folder)
        self.bindings = Bindings(self.control_folder)
        self.queues = Queues(self.control_folder, self.folder, self.bindings)
        self.later = Later()  # records a full disk held back
        self._auto_delete = set()  # queues deleted when their last consumer leaves
        self._exclusive = set()  # queues of this channel alone, deleted when it closes
        self._no_ack_queues = set()  # consumed without acknowledgements
        self._consuming = {}  # consumer tag -> queue, as kept in the queue's file

    # Messages --------------------------------------------------------------

    def prepare_message(self, body, priority=None, *args, **kwargs):
        message = super().prepare_message(body, priority, *args, **kwargs)
        if priority is None:  # none, as on RabbitMQ (kombu's virtual transports say 0)
            message["properties"].pop("priority", None)
        return message

    def basic_publish(self, message, exchange, routing_key, **kwargs):
        messages.check_size(message["body"], self.max_message_size)  # as RabbitMQ does
        return super().basic_publish(message, exchange, routing_key, **kwargs)

    def _put(self, queue, payload, **kwargs):
        priority = payload["properties"].get("priority")
        name, folder = messages.new_name(queue, priority), self.folder_out
        data = messages.encode(payload)
        write_private_file(os.path.join(folder, name), data, os.path.join(folder, f".{name}.tmp"))
        notify.ring(folder, name)  # the consumers without inotify

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

    def typeof(self, exchange, default="direct"):
        """The type `exchange` was declared with, by whichever process (bindings.py)."""
        declared = self.bindings.declared(exchange) if exchange else None
        if declared is None:
            kept = self.state.exchanges.get(exchange)
            kind = kept["type"] if kept else exchanges.PREDECLARED.get(exchange, default)
        else:
            kind = declared["type"]
        return self.exchange_types[kind]

    def exchange_declare(self, exchange=None, type="direct", durable=False, auto_delete=False,
                         arguments=None, nowait=False, passive=False):  # fmt: skip
        type = type or "direct"
        exchange = exchange or f"amq.{type}"
        kept = self.bindings.declared(exchange)
        if kept is None and exchange in exchanges.PREDECLARED:
            kept = {"type": exchanges.PREDECLARED[exchange], "durable": True,
                    "auto_delete": False, "arguments": {}}  # fmt: skip
        if passive:
            if kept is None and exchange not in self.state.exchanges:
                raise NotFound(f"NOT_FOUND - no exchange {exchange!r} in vhost '/'", (40, 10))
            return
        if type not in self.exchange_types:
            raise ChannelError(
                f"COMMAND_INVALID - unknown exchange type {type!r} for exchange {exchange!r}: "
                f"RabbitMQ without plugins and this broker route {', '.join(exchanges.TYPES)}",
                (40, 10),
            )
        declaration = {"type": type, "durable": bool(durable), "auto_delete": bool(auto_delete),
                       "arguments": arguments or {}}  # fmt: skip
        if kept is not None:
            for key, now in declaration.items():
                if key != "arguments" and kept[key] != now:
                    raise PreconditionFailed(
                        f"PRECONDITION_FAILED - inequivalent arg {key!r} for exchange "
                        f"{exchange!r}: received {now!r} but current is {kept[key]!r} (as on "
                        f"RabbitMQ); declare it as before, or delete it first "
                        f"(celery amqp exchange.delete {exchange})",
                        (40, 10),  # Exchange.declare
                    )
        self.state.exchanges.pop(exchange, None)  # the folder says what it is now
        super().exchange_declare(exchange, type, durable, auto_delete, arguments, nowait)
        if kept is None:
            write = partial(self.bindings.declare, exchange, declaration)
            self.later.write(("exchange", exchange), f"Exchange {exchange}", write)

    def exchange_delete(self, exchange, if_unused=False, nowait=False):
        """Delete `exchange` and its bindings; its queues stay, as on RabbitMQ (kombu's
        virtual transports delete the queues too)."""
        if if_unused and self.get_table(exchange):
            return
        self.bindings.remove(exchange)
        self.state.exchanges.pop(exchange, None)

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
            if kwargs.get("exclusive"):
                self._take_exclusive(declared.queue)
            write = partial(self.queues.declare, declared.queue, arguments)
            self.later.write(("arguments", declared.queue), f"Arguments of {queue}", write)
        if "x-message-ttl" in arguments:
            self.connection.message_ttl[declared.queue] = arguments["x-message-ttl"]
        if arguments.get("x-max-priority"):
            self.connection.listing.priorities[declared.queue] = arguments["x-max-priority"]
        return declared._replace(consumer_count=len(self.queues.consumers(declared.queue)))

    def _take_exclusive(self, queue):
        try:
            self.queues.take_exclusive(queue)
        except OSError as exc:  # a full disk: declared, unrecorded (RabbitMQ fails none)
            logger.warning("Exclusive queue %s not recorded: %s", queue, exc)
        self._exclusive.add(queue)

    def queue_delete(self, queue, if_unused=False, if_empty=False, with_messages=True, **kwargs):
        """Delete `queue`, its bindings and its messages, as RabbitMQ does (if_unused,
        if_empty: not while it has consumers, messages)."""
        if (if_unused and self.queues.consumers(queue)) or (if_empty and self._size(queue)):
            return
        super().queue_delete(queue, if_unused, if_empty, **kwargs)
        # Its bindings made by any process, not only this one's (a full disk: later).
        write = partial(self.bindings.forget, queue)
        self.later.write(("forget", queue), f"Unbinding of {queue}", write)
        self.connection.listing.forget(queue)
        self._exclusive.discard(queue)
        return self.queues.delete(queue, with_messages)  # how many messages went

    def expire(self):
        """Write what a full disk held back; expire queues and old messages (queues.py);
        delete the files of owners that ended unseen (owners.py)."""
        self.later.flush()
        owners.sweep(self.control_folder)
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
        # RabbitMQ drops an auto-delete queue when its last consumer leaves, and an
        # exclusive one with its connection; do the same, so that a stopped worker's
        # remote-control binding goes too.
        consumed, self._consuming = self._consuming, {}
        try:
            self._leave(consumed)
            for queue in list(self._exclusive):
                self.queue_delete(queue)
            for queue in self._auto_delete:  # declared, never consumed: unbound only
                self.queue_delete(queue, if_unused=True, with_messages=False)
        except Exception as exc:  # closing must not fail on a stale binding
            logger.debug("Could not unbind %s: %r", self._auto_delete, exc)
        self._auto_delete.clear()
        super().close()
