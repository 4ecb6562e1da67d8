"""The listing: which message files wait in which queue, as one process knows it.

A full listing of the queue folder serves every queue and channel of the process;
between two, inotify names each file that arrives, in order. So a backlog of N
messages costs N reads, not N listings. The listing happens when it is due: at a
consumer's start, at its timer (each second with inotify, for missed events and the
claims of dead workers; each POLL seconds without), after the kernel dropped events,
and always for a process that does not consume (a producer, basic_get).
"""

import bisect
import os
import time
from collections import deque

from . import messages
from .claims import CLAIMED
from .folders import make_folder


class Listing:
    def __init__(self, folder):
        self.folder = folder
        self.pending = {}  # queue -> names of its message files, in delivery order
        self.priorities = {}  # queue -> its x-max-priority, as declared in this process
        self.interval = None  # seconds between listings; None: list at every look
        self._next = 0.0

    def again(self):
        """List at the next look for a message in an empty queue."""
        self._next = 0.0

    def due(self):
        now = time.monotonic()
        if self.interval is None or now >= self._next:
            self._next = now + (self.interval or 0)
            return True
        return False

    def head(self, queue):
        """The name of the oldest message file pending in `queue`, or None."""
        pending = self.pending.get(queue)
        return pending[0] if pending else None

    def waiting(self, queues):
        """Has any of `queues` a message file pending?"""
        return any(self.pending.get(queue) for queue in queues)

    def list(self, consumed, take_back):
        """Look at the folder: the message files of every queue, oldest first, once
        take_back(name) put back those of dead processes. A queue in `consumed` keeps
        the names it has (inotify adds the new ones)."""
        found = {}
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:  # deleted under us (make clean): back, empty
            make_folder(self.folder)
            names = []
        for name in names:
            if name.endswith(CLAIMED):
                name = take_back(name)
            queue = messages.queue_of(name or ".")
            if queue is not None:
                found.setdefault(queue, []).append(name)
        for queue, names in found.items():
            # A priority queue takes every listing: without inotify, a higher
            # priority that arrived behind a backlog must go first.
            if not self.pending.get(queue) or queue not in consumed or queue in self.priorities:
                order = messages.order(self.priorities.get(queue))
                self.pending[queue] = deque(sorted(names, key=order))

    def arrived(self, names, consumed):
        """Add the files inotify named, in the order they arrived, to the queues in
        `consumed`; names None (the kernel dropped events): list again."""
        if names is None:
            self.pending.clear()
            self.again()
            return
        for name in names:
            queue = messages.queue_of(name)
            if queue in consumed:
                pending = self.pending.setdefault(queue, deque())
                if queue in self.priorities:
                    bisect.insort(pending, name, key=messages.order(self.priorities[queue]))
                else:
                    pending.append(name)

    def forget(self, queue):
        self.pending.pop(queue, None)
