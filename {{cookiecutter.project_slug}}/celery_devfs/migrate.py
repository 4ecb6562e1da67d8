"""Switching a project from development to production loses nothing silently: what a
data folder still holds (`make check` says it in production), and moving its waiting
tasks to the production broker (`make migrate`), through kombu on both sides:
each message is claimed here, published there with publisher confirms, then
acknowledged here, so a development worker still running takes none twice."""

import os
from pathlib import Path

from kombu import Connection

from . import SCHEME, claims, messages, register
from .folders import make_data_folders


def left(data_dir):
    """{queue: messages waiting or running} and the number of results in a data folder,
    without creating or changing anything in it."""
    folder, waiting = Path(data_dir), {}
    for name in _names(folder / "queue"):
        queue = messages.queue_of(claims.message_of(name) or ".")
        if queue is not None and not internal(queue):
            waiting[queue] = waiting.get(queue, 0) + 1
    results = sum(1 for name in _names(folder / "results") if name.startswith("celery-task-meta-"))
    return waiting, results


def development_left(data_dir):
    """What `make check` says in production when development left tasks or results."""
    waiting, results = left(data_dir)
    if not waiting and not results:
        return None
    return (
        f"development left {sum(waiting.values())} tasks and {results} results in {data_dir}, "
        "which production does not read: make migrate moves the tasks to this broker (or "
        "run them: CELERY_ENV=development make worker); make clean deletes it all"
    )


def migrate_command(data_dir, app):
    """`make migrate`: one line per queue moved; an exit status or an ERROR line."""
    if app.conf.broker_url.startswith(f"{SCHEME}:"):
        return (
            "ERROR: make migrate moves development's waiting tasks to the production broker: "
            "set CELERY_ENV=production in .env first"
        )
    moved, unknown = migrate(data_dir, app)
    for queue, count in moved.items():
        print(f"moved {count} tasks of queue {queue} from {data_dir}")
    for queue, count in unknown.items():
        print(f"left {count} tasks of queue {queue}: not one of the app's (task_queues)")
    if not moved and not unknown:
        print(f"no task waits in {data_dir}")
    return 0


def internal(queue):
    """Celery's own queues (remote control, replies, monitors): nothing to move."""
    return queue.endswith(".pidbox") or queue.startswith("celeryev.")


def migrate(data_dir, app):
    """Move the tasks waiting in the data folder's queues that `app` knows to app's
    broker; returns {queue: moved}, and those left in queues it does not know."""
    waiting, _ = left(data_dir)
    if not waiting:
        return {}, {}
    folders = make_data_folders(data_dir)  # ours already: refuses any other folder
    register()  # devfs:// (production never registered it)
    options = {"data_folder_in": str(folders["queue"]), "data_folder_out": str(folders["queue"]),
               "control_folder": str(folders["control"]),
               "quarantine_folder": str(folders["quarantine"])}  # fmt: skip
    moved, unknown = {}, {q: n for q, n in waiting.items() if q not in app.amqp.queues}
    with Connection(f"{SCHEME}://", transport_options=options) as source:
        with app.connection_for_write() as target:
            producer = target.Producer()
            for name in [q for q in waiting if q in app.amqp.queues]:
                queue = app.amqp.queues[name]
                queue.bind(target.default_channel).declare()
                waiting_here, moved[name] = queue.bind(source.default_channel), 0
                while (message := waiting_here.get()) is not None:
                    producer.publish(
                        message.body, exchange=queue.exchange.name, routing_key=queue.routing_key,
                        content_type=message.content_type, headers=message.headers,
                        content_encoding=message.content_encoding, **_kept(message.properties),
                    )  # fmt: skip
                    message.ack()  # once the broker has it (publisher confirms)
                    moved[name] += 1
    return moved, unknown


def _kept(properties):
    keys = ("priority", "correlation_id", "reply_to", "expiration")
    return {key: properties[key] for key in keys if properties.get(key) is not None}


def _names(folder):
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []
