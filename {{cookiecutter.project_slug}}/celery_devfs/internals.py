"""Every private kombu and Celery name celery_devfs relies on, in one place.

tests/test_internals.py checks that each is still there, with the parameters
written here: when a new kombu or Celery moves one, that test names it. The
rest of celery_devfs uses their public API (kombu's virtual Channel and Transport,
Celery's KeyValueStoreBackend, signals, Mingle's bootstep).
"""

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
    # Queue(expires=, message_ttl=) as RabbitMQ's x-expires and x-message-ttl.
    "kombu.transport.base.to_rabbitmq_queue_arguments": ("arguments", "options"),
}
# How kombu calls two hooks it has no default for: the text each caller holds.
KOMBU_CALLS = {
    "kombu.transport.virtual.Channel.queue_bind": "self._queue_bind(exchange, *meta)",
    "kombu.transport.virtual.Channel.queue_delete": "self._delete(queue, exchange, *meta",
    "kombu.transport.virtual.exchange.FanoutExchange.deliver": "self.channel._put_fanout(",
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
