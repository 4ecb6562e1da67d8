"""Message files: their names, what a valid one holds, and when one has expired.

A message file is ``<time in ns, 20 digits>_<uuid>.<queue>.msg`` in the queue
folder (kombu's filesystem names, with the time first: first in, first out).
Any name that starts with a dot (a file being written, a claim) is no message.
"""

import json
import time
import uuid

from .folders import MAX_FILE_BYTES, DamagedFile

SUFFIX = "msg"


def new_name(queue):
    return f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}.{SUFFIX}"


def queue_of(name):
    """The queue of a message file's name, or None for any other name."""
    queue, _, suffix = name.partition(".")[2].rpartition(".")
    return queue if suffix == SUFFIX and not name.startswith(".") else None


def age_ms(name):
    """Milliseconds since the message was sent; 0 for a name without the time."""
    sent = name[:20]
    return (time.time_ns() - int(sent)) / 1e6 if sent.isdigit() else 0


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
    if ttl and age_ms(name) > min(ttl):
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
