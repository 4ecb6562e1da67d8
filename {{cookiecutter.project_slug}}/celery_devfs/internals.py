"""Every private kombu and Celery name celery_devfs relies on, in one place.

tests/test_internals.py checks that each is still there, with the parameters
written here: when a new kombu or Celery moves one, that test names it. The
rest of celery_devfs uses their public API (kombu's virtual Channel and Transport,
Celery's KeyValueStoreBackend, signals, Mingle's bootstep). moved() checks them all
at run time, when a kombu or Celery minor it was not tested with is installed.
"""

import importlib
import inspect

# kombu's virtual transport: the hooks a transport implements (kombu's own Redis,
# SQS and SQLAlchemy transports implement the same), and two it calls.
KOMBU = {
    "kombu.transport.virtual.Channel._get": ("self", "queue", "timeout"),
    "kombu.transport.virtual.Channel._put": ("self", "queue", "message"),
    "kombu.transport.virtual.Channel._purge": ("self", "queue"),
    "kombu.transport.virtual.Channel._size": ("self", "queue"),
    "kombu.transport.virtual.Channel._delete": ("self", "queue", "args", "kwargs"),
    "kombu.transport.virtual.Channel._restore": ("self", "message"),
    # Fanout: called when Channel.supports_fanout (kombu's FanoutExchange says so).
    "kombu.transport.virtual.exchange.FanoutExchange.deliver": (
        "self",
        "message",
        "exchange",
        "routing_key",
        "kwargs",
    ),
    "kombu.transport.virtual.Transport._deliver": ("self", "message", "queue"),
    # Exchange types (exchanges.py) and the channel's lookups that pick them.
    "kombu.transport.virtual.Channel.typeof": ("self", "exchange", "default"),
    "kombu.transport.virtual.Channel._lookup": ("self", "exchange", "routing_key", "default"),
    "kombu.transport.virtual.exchange.ExchangeType.prepare_bind": (
        "self",
        "queue",
        "exchange",
        "routing_key",
        "arguments",
    ),
    "kombu.transport.virtual.exchange.ExchangeType.lookup": (
        "self",
        "table",
        "exchange",
        "routing_key",
        "default",
    ),
    # What one drain_events may deliver (transport.py).
    "kombu.transport.virtual.QoS.can_consume_max_estimate": ("self",),
    # Queue(expires=, message_ttl=) as RabbitMQ's x-expires and x-message-ttl.
    "kombu.transport.base.to_rabbitmq_queue_arguments": ("arguments", "options"),
}
# How kombu calls the hooks it has no default for: the text each caller holds.
KOMBU_CALLS = {
    "kombu.transport.virtual.Channel.queue_bind": "self._queue_bind(exchange, *meta)",
    "kombu.transport.virtual.Channel.queue_delete": "self._delete(queue, exchange, *meta",
    "kombu.transport.virtual.exchange.FanoutExchange.deliver": "self.channel._put_fanout(",
    # The headers exchange routes in deliver(), which alone is given the message.
    "kombu.transport.virtual.Channel.basic_publish": "self.typeof(exchange).deliver(",
}
# Attributes of a kombu virtual Transport, checked on an instance.
KOMBU_TRANSPORT_ATTRIBUTES = ("_callbacks", "channels")
# Celery: what a key-value result backend's get_many uses, and Mingle's switch.
CELERY = {
    "celery.backends.base.BaseKeyValueStoreBackend._mget_to_results": (
        "self", "values", "keys", "READY_STATES",
    ),
    "celery.backends.base.BaseKeyValueStoreBackend.on_chord_part_return": (
        "self", "request", "state", "result", "kwargs",
    ),
}  # fmt: skip
CELERY_BACKEND_ATTRIBUTES = ("_cache",)
CELERY_MINGLE_ATTRIBUTES = ("compatible_transports",)
# Behaviour, not names: Celery's on_chord_part_return counts the parts with incr()
# against the size of the group it restores (backend.py sets the counter so).


def resolve(dotted):
    """The object a dotted name stands for: module, then attributes."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for name in parts[end:]:
            found = getattr(found, name)
        return found
    raise ImportError(dotted)


def moved():
    """What of the above is no longer as celery_devfs expects it, a few words each ([]
    when all is): for a kombu or Celery release celery_devfs was not tested with."""
    found = []
    for dotted, expected in {**KOMBU, **CELERY}.items():
        try:
            parameters = tuple(inspect.signature(resolve(dotted)).parameters)
        except (ImportError, AttributeError, TypeError, ValueError):
            found.append(f"{dotted} is gone")
            continue
        if parameters != expected:
            found.append(f"{dotted} takes ({', '.join(parameters)}), not ({', '.join(expected)})")
    for dotted, call in KOMBU_CALLS.items():
        try:
            source = inspect.getsource(resolve(dotted))
        except (ImportError, AttributeError, TypeError, OSError):
            source = ""
        if call not in source:
            found.append(f"{dotted} no longer calls {call.partition('(')[0]}()")
    from celery import Celery
    from celery.backends.base import DisabledBackend
    from celery.worker.consumer.mingle import Mingle
    from kombu import Connection

    owners = {
        "kombu's virtual Transport": (
            Connection("memory://").transport,
            KOMBU_TRANSPORT_ATTRIBUTES,
        ),
        "Celery's result backend": (
            DisabledBackend(app=Celery("internals", set_as_current=False)),
            CELERY_BACKEND_ATTRIBUTES,
        ),
        "Celery's Mingle": (Mingle, CELERY_MINGLE_ATTRIBUTES),
    }
    for owner, (instance, names) in owners.items():
        found += [f"{owner} has no {name}" for name in names if not hasattr(instance, name)]
    return found
