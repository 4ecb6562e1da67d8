"""Queue and exchange names in file names: any name RabbitMQ takes, up to its 255
bytes of UTF-8, is kept on disk whatever it holds (a space, `/`, `:`, `*`, `~`,
unicode, `../`), never as a path.

A name is percent-encoded, letters, digits and `@._-` kept as they are: the names
Celery uses (celery, celery@host.dq2, celery.pidbox, UUIDs) read the same on disk.
A name a Windows filesystem keeps for a device (`CON`, `nul.txt`: WSL's /mnt/c)
has its first letter encoded. A name longer than LONG bytes once encoded (a file
name holds 255 bytes, and a message's name adds about 90) is kept as
`%sha-<hash>` instead; the processes that use it know it by the hash, and its
control file holds the name itself. A `%` followed by anything but two hex digits
never comes out of percent-encoding, so the kinds never meet.
"""

import functools
import hashlib
from urllib.parse import quote, unquote

from amqp.exceptions import ChannelError

MAX_BYTES = 255  # RabbitMQ's (AMQP's short string)
LONG = 150
HASHED = "%sha-"
_long = {}  # hashed on-disk name -> the name, for those this process used
# Names a Windows filesystem keeps for devices, whatever follows the first dot.
WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
WINDOWS_DEVICES |= {f"{port}{n}" for port in ("COM", "LPT") for n in range(10)}


@functools.lru_cache(maxsize=4096)  # each message's name asks it
def on_disk(name, kind="queue"):
    """The file-name form of a queue or exchange name; ChannelError (one line) for
    what RabbitMQ would not take either."""
    if not isinstance(name, str):
        raise ChannelError(f"A {kind} name must be text, not {name!r}")
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise ChannelError(
            f"The {kind} name {name[:40]!r}... is {size} bytes long; RabbitMQ takes up to "
            f"{MAX_BYTES}: choose a shorter name"
        )
    encoded = quote(name, safe="@._-", errors="surrogatepass").replace("~", "%7E")
    if encoded.partition(".")[0].upper() in WINDOWS_DEVICES:  # /mnt/c under WSL
        encoded = f"%{ord(encoded[0]):02X}{encoded[1:]}"
    if len(encoded) <= LONG:
        return encoded
    hashed = HASHED + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    _long[hashed] = name
    return hashed


def name_of(encoded):
    """The name of an on-disk form; a hashed one that this process never used stays as
    it is (its control file holds the name)."""
    if "%" not in encoded:  # the usual case, each file listed
        return encoded
    if encoded.startswith(HASHED):
        return _long.get(encoded, encoded)
    return unquote(encoded, errors="surrogatepass")
