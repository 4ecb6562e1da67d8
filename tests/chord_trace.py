"""Where a chord's time goes on celery_devfs: timestamps along its path, from every
process (the client, the worker, its pool processes), and the breakdown bench.py prints.

install(path) wraps the few places a message or a result passes, in the process that
calls it (the worker's pool processes are forked from it, so they inherit it); each
event is one line appended to `path`: "<CLOCK_MONOTONIC ns> <pid> <event> <task id>"
(one clock for every process on Linux). breakdown(lines) follows each chord's critical
path: its last header task to finish, then its body.
"""

import os
import statistics
import time

# One task's hop, as (segment, event that ends it): the last header task's, then the body's.
HOP = [
    ("wake-up: file written -> worker woken", "woken"),
    ("claim: list, rename, read and decode the file", "claimed"),
    ("Celery in the worker: message -> task request", "received"),
    ("pool hand-off: worker -> pool process, task starts", "started"),
    ("the task runs (sum)", "storing"),
    ("result write", "stored"),
]
# The critical path of a chord.
PATH = [
    ("send: the client writes the header's messages", "written"),
    *HOP,
    ("chord count, body sent", "written"),
    *HOP,
    ("result wake-up: client woken, reads the result", "done"),
]
HEADER_STEPS = 1 + len(HOP)  # the send and the last header task's hop; then the body's


def install(path):
    """Trace this process (and the processes it forks) into `path`; returns what undoes it."""
    from celery.signals import task_prerun, task_received
    from celery_devfs.backend import Backend
    from celery_devfs.channel import Channel
    from celery_devfs.transport import Transport

    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def note(event, task_id=""):
        os.write(fd, f"{time.monotonic_ns()} {os.getpid()} {event} {task_id}\n".encode())

    kept = {
        (Channel, "_put"): Channel._put,
        (Channel, "_get"): Channel._get,
        (Transport, "on_readable"): Transport.on_readable,
        (Transport, "on_timer"): Transport.on_timer,
        (Backend, "set"): Backend.set,
    }

    def put(self, queue, payload, **kwargs):
        kept[Channel, "_put"](self, queue, payload, **kwargs)
        note("written", payload.get("headers", {}).get("id", ""))

    def get(self, queue):
        message = kept[Channel, "_get"](self, queue)
        note("claimed", message.get("headers", {}).get("id", ""))
        return message

    def woken(name):
        def wrapper(self, *args):
            note("woken")
            return kept[Transport, name](self, *args)

        return wrapper

    def store(self, key, value):
        task_id = os.fsdecode(key).removeprefix("celery-task-meta-")
        note("storing", task_id)
        kept[Backend, "set"](self, key, value)
        note("stored", task_id)

    def received(sender=None, request=None, **kwargs):
        note("received", request.id)

    def started(sender=None, task_id=None, **kwargs):
        note("started", task_id)

    Channel._put, Channel._get, Backend.set = put, get, store
    Transport.on_readable, Transport.on_timer = woken("on_readable"), woken("on_timer")
    task_received.connect(received, weak=False)
    task_prerun.connect(started, weak=False)

    def undo():
        for (owner, name), function in kept.items():
            setattr(owner, name, function)
        task_received.disconnect(received)
        task_prerun.disconnect(started)
        os.close(fd)

    undo.note = note
    return undo


def chord_path(events, start, end):
    """The times (ns) ending each PATH segment for one chord, from its events (time, pid,
    event, task id) between its start and end."""
    by_task = {}
    for at, _, event, task_id in events:
        if task_id and start <= at <= end:
            by_task.setdefault(task_id, {}).setdefault(event, at)
    ran = {task: seen for task, seen in by_task.items() if {"started", "stored"} <= set(seen)}
    body = max(ran, key=lambda task: ran[task]["started"])
    last_header = max((t for t in ran if t != body), key=lambda task: ran[task]["stored"])
    wakes = [at for at, _, event, _ in events if event == "woken" and start <= at <= end]
    times = [start]
    for step, (_, event) in enumerate(PATH):
        task = last_header if step < HEADER_STEPS else body
        if event == "done":
            at = end
        elif event == "woken":
            # The first wake-up after the file was written; with none before the claim
            # (the worker was busy, and found the file as it went on), the claim time:
            # the wait counts as the wake-up.
            claimed = ran[task]["claimed"]
            at = min([w for w in wakes if w >= times[-1]] + [claimed])
        else:
            at = ran[task][event]
        times.append(max(at, times[-1]))
    return times


def breakdown(lines, chords):
    """{segment: [ms, ...]} over the chords [(start ns, end ns), ...], with "total"."""
    events = []
    for line in lines:
        at, pid, event, *task_id = line.split()
        events.append((int(at), int(pid), event, task_id[0] if task_id else ""))
    events.sort()
    rows = {}
    for start, end in chords:
        times = chord_path(events, start, end)
        for step, (segment, _) in enumerate(PATH):
            name = f"{step + 1:>2}. {segment}"
            rows.setdefault(name, []).append((times[step + 1] - times[step]) / 1e6)
        rows.setdefault("total", []).append((end - start) / 1e6)
    return rows


def median_ms(values):
    return f"{statistics.median(values):.2f}"
