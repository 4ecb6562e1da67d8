"""Claims: how one process takes a message, holds it until it is acknowledged, and
how a message goes back to its queue, or to quarantine.

A process claims a message by renaming it, in the queue folder, to
``.<name>~<owner>.claimed``: of several processes, exactly one wins. The file
stays until the message is acknowledged, so a message whose process dies first
(SIGKILL, out of memory) is still there: the next listing puts it back in its
queue, once owners.py says its owner has ended (whatever the hostname or PID).
Claims of older versions, ``.<name>~<host>~<pid>.claimed``, are judged as they
were: by host and PID.
"""

import json
import logging
import os
import socket
import uuid

from . import messages, notify, owners
from .folders import make_folder, read_regular_file, write_private_file

logger = logging.getLogger(__name__)
HOST = socket.gethostname().replace("~", "-")  # with the PID, an older version's owner
CLAIMED = ".claimed"


def alive(pid):
    if os.name == "nt":
        return True  # os.kill(pid, 0) sends Ctrl-C on Windows: never take claims back there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def owner(claimed):
    """(message name, owner token) of a claim's file name, or (name, (host, pid)) for
    an older version's; ValueError if it is none."""
    name, who = claimed[1 : -len(CLAIMED)].rsplit("~", 1)
    if not owners.TOKEN.fullmatch(who):
        name, host = name.rsplit("~", 1)
        who = (host, int(who))
        if who[1] <= 0:
            raise ValueError(claimed)
    if not claimed.startswith(".") or not name.endswith(".msg") or "~" in name:
        raise ValueError(claimed)
    return name, who


def ended(control_folder, who):
    """Has the owner of a claim ended? An older version's: a dead PID of this host."""
    if isinstance(who, tuple):
        return who[0] == HOST and not alive(who[1])
    return not owners.alive(control_folder, who)


def message_of(file_name):
    """The message name of a file in the queue folder, claimed or not; None for others."""
    if file_name.endswith(CLAIMED):
        try:
            return owner(file_name)[0]
        except ValueError:
            return None
    return file_name if messages.queue_of(file_name) is not None else None


class Claims:
    """The messages one channel holds, by delivery tag, until they are settled."""

    def __init__(self, folder, quarantine_folder, processed_folder=None, control_folder=None):
        self.folder = folder
        # Where owners.py keeps the owners' files: the control folder, as for consumers.
        self.control_folder = control_folder or os.path.join(os.path.dirname(folder), "control")
        self.quarantine_folder = quarantine_folder
        self.processed_folder = processed_folder  # keep acknowledged files there
        self.held = {}  # delivery tag -> (claimed path, message name)

    def path(self, name):
        return os.path.join(self.folder, f".{name}~{owners.token(self.control_folder)}{CLAIMED}")

    def claim(self, name, decode_body):
        """(claimed path, message) of the message file `name`, or None: another process
        took it first, or it was damaged (quarantined)."""
        claimed = self.path(name)
        try:
            os.rename(os.path.join(self.folder, name), claimed)
        except FileNotFoundError:
            return None  # another process took it first
        except OSError as exc:  # stays in the queue: the next listing finds it again
            logger.warning("Could not claim message %s (%s): left in its queue", name, exc)
            return None
        try:
            return claimed, messages.decode(read_regular_file(claimed), decode_body)
        except FileNotFoundError:
            return None  # deleted under us (make purge, make clean)
        except ValueError as exc:  # DamagedFile, JSON, Unicode
            self.quarantine(os.path.basename(claimed), name, exc)
            return None

    def hold(self, delivery_tag, claimed, name):
        self.held[delivery_tag] = (claimed, name)

    def settle(self, delivery_tag):
        """The message is acknowledged: delete its file (or keep it in processed/)."""
        claimed, name = self.held.pop(delivery_tag, (None, None))
        if claimed is None:
            return
        try:
            if self.processed_folder:
                make_folder(self.processed_folder)
                os.replace(claimed, os.path.join(self.processed_folder, name))
            else:
                os.remove(claimed)
        except FileNotFoundError:
            pass  # deleted under us (make clean): nothing left to settle

    def give_back(self, delivery_tag):
        """Put a held message back where it was in its queue; False if not held here."""
        claimed, name = self.held.pop(delivery_tag, (None, None))
        if claimed is None:
            return False
        try:
            self.put_back(claimed, name)
        except FileNotFoundError:
            logger.warning("Message %s was deleted while claimed; not restored", name)
        return True

    def put_back(self, claimed, name):
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
        os.rename(claimed, os.path.join(self.folder, name))
        notify.ring(self.folder, name)

    def take_back(self, claimed):
        """The message name, once a message claimed by a process that has ended is
        back in its queue; None for a live owner's claim."""
        try:
            name, who = owner(claimed)
        except ValueError:
            self.quarantine(claimed, claimed, "not a claim name: .<message>~<owner>.claimed")
            return None
        if not ended(self.control_folder, who):
            return None
        ours = self.path(name)
        try:  # claim it first, so that only one process puts it back
            os.rename(os.path.join(self.folder, claimed), ours)
        except OSError:
            return None  # another process took it back first
        self.put_back(ours, name)
        logger.warning("Message %s of ended process %s put back in its queue", name, who)
        return name

    def quarantine(self, current, name, why):
        """Move a file of the queue folder to the quarantine folder, with one log line."""
        make_folder(self.quarantine_folder)
        target = os.path.join(self.quarantine_folder, name)
        if os.path.lexists(target):
            target = f"{target}.{uuid.uuid4().hex}"
        try:
            os.rename(os.path.join(self.folder, current), target)
        except FileNotFoundError:
            return  # another process moved it first
        except OSError as exc:
            logger.error("Damaged message file %s (%s) left in place: %s", current, why, exc)
            return
        logger.error("Damaged message file (%s) moved to %s", why, target)
