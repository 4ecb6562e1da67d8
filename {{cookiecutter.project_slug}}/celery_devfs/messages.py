"""Message files: their names, what a valid one holds, and when one has expired.

A message file is ``<time in ns, 20 digits>_<uuid>.<queue>.msg`` in the queue
folder (kombu's filesystem names, with the time first: first in, first out; the
queue's name as names.py keeps it on disk), and
``<time>_<uuid>_p<priority, 3 digits>.<queue>.msg`` for a message sent with a
priority above 0 (read by queues declared with x-max-priority, as on RabbitMQ).
Any name that starts with a dot (a file being written, a claim) is no message.
"""

import json
import time
import uuid

from amqp.exceptions import PreconditionFailed

from . import names
from .folders import MAX_FILE_BYTES, DamagedFile

SUFFIX = "msg"
# RabbitMQ 4's default max_message_size (docker-compose.yml's broker; RabbitMQ 3's was
# 128 MiB): a larger message is refused at .delay() as there. To raise it, raise both:
# RabbitMQ's max_message_size and the transport option max_message_size.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_PRIORITY = 255  # RabbitMQ's highest x-max-priority
# RabbitMQ hands a message to a consumer that waits for it before its TTL counts:
# Celery's `expires` in the past (an expiration of 0) still reaches an idle worker,
# which revokes the task. A waiting consumer here sees a new file within POLL (0.1 s)
# without inotify, at once with it; the TTL counts after this grace.
TTL_GRACE_MS = 250


_last_ns = [0]  # the time in this process's last message name
STEP_BACK_NS = 60 * 10**9  # a clock stepped back by more follows the clock


def new_name(queue, priority=None):
    """The name of a new message file; `priority` as sent (None: none). Not earlier
    than this process's previous one when the clock stepped back by up to a minute
    (NTP after a laptop wakes, WSL 2's drift corrected): a producer's messages keep the
    order it sent them in. Further back (a clock that was set wrong), the clock wins."""
    priority = priority_number(priority)
    mark = f"_p{priority:03d}" if priority else ""
    now, last = time.time_ns(), _last_ns[0]
    if last - STEP_BACK_NS < now <= last:
        now = last + 1
    _last_ns[0] = now
    return f"{now:020d}_{uuid.uuid4().hex}{mark}.{names.on_disk(queue)}.{SUFFIX}"


def priority_number(priority):
    """A message's priority as RabbitMQ reads it: an integer from 0 to 255."""
    if isinstance(priority, bool) or not isinstance(priority, int | float):
        return 0
    return max(0, min(int(priority), MAX_PRIORITY))


def priority_of(name):
    """The priority a message file's name holds (0 for none)."""
    head, _, mark = name.partition(".")[0].rpartition("_p")
    return int(mark) if head and len(mark) == 3 and mark.isdigit() else 0


def order(max_priority):
    """The sort key of a queue's message names: first in, first out, and with an
    x-max-priority, higher priorities first (above the maximum: as the maximum)."""
    if not max_priority:
        return None
    return lambda name: (-min(priority_of(name), max_priority), name)


def queue_of(name):
    """The queue of a message file's name, or None for any other name."""
    queue, _, suffix = name.partition(".")[2].rpartition(".")
    return names.name_of(queue) if suffix == SUFFIX and not name.startswith(".") else None


def age_ms(name):
    """Milliseconds since the message was sent; 0 for a name without the time."""
    sent = name[:20]
    return (time.time_ns() - int(sent)) / 1e6 if sent.isdigit() else 0


def check_size(body, limit=MAX_MESSAGE_BYTES):
    """PreconditionFailed, as RabbitMQ closes the channel with, for a message body
    (as sent, before its base64 here) over `limit` bytes."""
    size = len(body.encode() if isinstance(body, str) else body or b"")
    if size > limit:
        raise PreconditionFailed(
            f"PRECONDITION_FAILED - message size {size} is larger than configured max size "
            f"{limit} (RabbitMQ 4's default, as on the production broker): send a reference "
            "to the data (a path, a URL, a key) instead of the data",
            (60, 40),  # Basic.publish
        )


def encode(payload):
    data = json.dumps(payload).encode()
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"a message of {len(data)} bytes is over {MAX_FILE_BYTES}")
    return data


def decode(data, decode_body):
    """The message in a file's bytes; DamagedFile (a ValueError) unless it has the shape
    kombu's virtual transports read (kombu.transport.virtual.Message)."""
    try:
        message = json.loads(data)
    except RecursionError as exc:
        raise DamagedFile("nested too deep") from exc
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
    return message


def expired(message, name, queue_ttl=None):
    """Never to be delivered: older than its queue's x-message-ttl or its own
    expiration (both in ms, as RabbitMQ reads them), or a remote-control broadcast
    whose sender stopped waiting for replies (an `expires` of 0 is kombu's "never":
    revoke, and every broadcast without reply)."""
    ttl = [queue_ttl, message["properties"].get("expiration")]  # expiration: a string
    ttl = [float(t) for t in ttl if milliseconds(t, text=True) is not None]
    if ttl and age_ms(name) > min(ttl) + TTL_GRACE_MS:
        return True
    exchange = message["properties"]["delivery_info"]["exchange"]
    expires = (message.get("headers") or {}).get("expires")
    return (
        exchange.endswith(".pidbox")
        and isinstance(expires, int | float)
        and 0 < expires < time.time()
    )


def milliseconds(value, text=False):
    """A duration in ms (x-expires, x-message-ttl; with `text`, an expiration string)
    as a number, or None."""
    if text and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return value if ok else None
