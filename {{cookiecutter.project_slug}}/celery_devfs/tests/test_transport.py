"""The transport in-process, as kombu tests its own: a Connection, no worker."""

import json
import os
import stat
import subprocess
import sys
import threading
import time

import celery_devfs
import pytest
from amqp.exceptions import PreconditionFailed
from celery_devfs import messages
from celery_devfs.claims import HOST
from celery_devfs.listing import Listing
from celery_devfs.testing import WATCHES, watch_as
from kombu import Connection, Exchange, Queue

from .conftest import ROOT


@pytest.fixture
def connection(tmp_path):
    options = celery_devfs.celery_settings(tmp_path / "data")["broker_transport_options"]
    with Connection("devfs://", transport_options=options) as connection:
        yield connection


def queue_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "data" / "queue").iterdir())


def test_put_get_ack(connection, tmp_path):
    queue = connection.SimpleQueue("q")
    queue.put({"n": 1})
    (first_name,) = queue_files(tmp_path)
    queue.put({"n": 2})
    (second_name,) = set(queue_files(tmp_path)) - {first_name}
    assert first_name.endswith(".q.msg") and second_name.endswith(".q.msg")
    assert first_name < second_name  # names sort in the order sent: first in, first out
    first = queue.get(timeout=1)
    assert first.payload == {"n": 1}
    # Both delivered, unacknowledged, as RabbitMQ sends a consumer without a prefetch
    # limit every message ready: the second waits in the SimpleQueue's buffer.
    assert len([n for n in queue_files(tmp_path) if n.endswith(".claimed")]) == 2
    first.ack()
    second = queue.get(timeout=1)
    second.ack()
    assert second.payload == {"n": 2}
    assert queue_files(tmp_path) == []


def test_files_are_owner_only(connection, tmp_path):
    connection.SimpleQueue("q").put({"n": 1})
    (name,) = queue_files(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "data" / "queue" / name).st_mode) == 0o600


def test_reject_with_requeue_delivers_again(connection, tmp_path):
    queue = connection.SimpleQueue("q")
    queue.put({"n": 1})
    first = queue.get(timeout=1)
    assert not first.delivery_info.get("redelivered")
    first.reject(requeue=True)
    again = queue.get(timeout=1)
    assert again.payload == {"n": 1}
    assert again.delivery_info["redelivered"] is True  # as RabbitMQ says; Celery reads it
    again.reject()  # without requeue: gone
    assert queue_files(tmp_path) == []


def test_unacknowledged_messages_go_back_when_the_channel_closes(tmp_path):
    options = celery_devfs.celery_settings(tmp_path / "data")["broker_transport_options"]
    with Connection("devfs://", transport_options=options) as connection:
        queue = connection.SimpleQueue("q")
        queue.put({"n": 1})
        assert queue.get(timeout=1).payload == {"n": 1}
        queue.close()
    assert [n.endswith(".q.msg") for n in queue_files(tmp_path)] == [True]
    with Connection("devfs://", transport_options=options) as connection:
        message = connection.SimpleQueue("q").get(timeout=1)
        assert message.payload == {"n": 1}
        message.ack()


def test_a_claim_of_a_dead_process_goes_back_to_the_queue(connection, tmp_path):
    queue = connection.SimpleQueue("q")
    queue.put({"n": 1})
    (name,) = queue_files(tmp_path)
    folder = tmp_path / "data" / "queue"
    dead = 2**22 + 12345  # above Linux's default pid_max: no such process
    os.rename(folder / name, folder / f".{name}~{HOST}~{dead}.claimed")
    message = queue.get(timeout=2)
    assert message.payload == {"n": 1}
    assert message.delivery_info["redelivered"] is True
    message.ack()


@pytest.mark.parametrize("notifications", WATCHES)
def test_a_consumer_lists_the_folder_now_and_then_not_at_each_new_file(
    notifications, connection, monkeypatch, request
):
    """A listing costs as much as there are files waiting, so one at each arrival would
    make a backlog quadratic: inotify or the doorbell names the new files; with
    neither, the consumer lists every POLL."""
    request.addfinalizer(watch_as(notifications))
    listings, listing = [], Listing.list
    monkeypatch.setattr(Listing, "list", lambda *args: listings.append(1) or listing(*args))
    received = []

    def take(body, message):
        received.append(body["n"])
        message.ack()

    queues = [Queue("q"), Queue("idle")]  # as a worker: its queue and remote control's
    with Connection("devfs://", transport_options=connection.transport_options) as sender:
        producer = sender.Producer()
        with connection.Consumer(queues, callbacks=[take]):
            for n in range(300):  # each file waited for, as by a worker that keeps up
                producer.publish({"n": n}, routing_key="q")
                connection.drain_events(timeout=1)
    assert received == list(range(300))  # in order, each once
    if notifications != "polling":
        assert len(listings) <= 3  # at the start, and about once a second


@pytest.mark.parametrize("notifications", WATCHES)
def test_in_celerys_event_loop_each_file_is_delivered_as_it_arrives(
    notifications, connection, request, monkeypatch
):
    """As a worker runs the transport: its descriptors in kombu's Hub (Celery's event
    loop). With inotify or the doorbell, each new file wakes the loop, which delivers
    it there and then (on_readable); with neither, the timer finds it."""
    from celery_devfs import transport as devfs_transport
    from kombu.asynchronous import Hub

    request.addfinalizer(watch_as(notifications))
    # The listing that catches a missed wake-up (every RELIST s) would deliver a file
    # written just before it fires: moved past this test's end, only a wake-up can.
    monkeypatch.setattr(devfs_transport, "RELIST", 3600)
    transport, hub, woken_by = connection.transport, Hub(), []
    readable = transport.on_readable

    def on_readable(fd):
        woken_by.append("readable")
        readable(fd)
        woken_by.append("done")

    transport.on_readable = on_readable
    received = []

    def take(body, message):
        received.append((body["n"], woken_by[-1:] == ["readable"]))
        message.ack()

    with Connection("devfs://", transport_options=connection.transport_options) as sender:
        producer = sender.Producer()
        with connection.Consumer([Queue("q")], callbacks=[take]):
            transport.register_with_event_loop(connection.connection, hub)
            try:
                for n in range(20):
                    # Sent while the loop sleeps in epoll, as by another process.
                    sending = threading.Timer(
                        0.05, producer.publish, ({"n": n},), {"routing_key": "q"}
                    )
                    sending.start()
                    deadline = time.monotonic() + 5
                    while len(received) <= n and time.monotonic() < deadline:
                        hub.run_once()
                    sending.join()
            finally:
                transport._unregister()
                hub.close()
    assert [n for n, _ in received] == list(range(20))  # in order, each once
    on_arrival = [by_readable for _, by_readable in received]
    assert all(on_arrival) if notifications != "polling" else not any(on_arrival)


@pytest.mark.parametrize("notifications", WATCHES)
def test_messages_of_several_queues_and_channels_arrive_in_the_order_sent(
    notifications, connection, request
):
    """As from one broker connection: a revoke broadcast to the worker's remote-control
    channel just before the task it revokes must reach the worker first."""
    request.addfinalizer(watch_as(notifications))
    received = []

    def take(body, message):
        received.append(body["n"])
        message.ack()

    with Connection("devfs://", transport_options=connection.transport_options) as sender:
        producer = sender.Producer()
        tasks = connection.Consumer([Queue("tasks")], callbacks=[take])
        control = connection.Consumer(
            [Queue("control")], channel=connection.channel(), callbacks=[take]
        )
        with tasks, control:
            for batch in range(3):  # each batch sent while the consumer is not looking
                for n in range(10 * batch, 10 * batch + 10):
                    producer.publish({"n": n}, routing_key=("control", "tasks")[n % 3 == 0])
                while len(received) < 10 * batch + 10:
                    connection.drain_events(timeout=2)
    assert received == list(range(30))


@pytest.mark.parametrize("notifications", WATCHES)
def test_a_queue_with_x_max_priority_delivers_higher_priorities_first(
    notifications, connection, request
):
    """As on RabbitMQ: from 0 to the queue's maximum (above it: as the maximum),
    first in, first out within a priority; a queue without it ignores priorities."""
    request.addfinalizer(watch_as(notifications))
    received = []

    def take(body, message):
        received.append((body["queue"], body["n"], message.properties.get("priority")))
        message.ack()

    queues = [Queue("pq", max_priority=10), Queue("plain")]
    sent = [(1, 1), (2, None), (3, 1), (4, 9), (5, 200), (6, 9), (7, 0)]
    with Connection("devfs://", transport_options=connection.transport_options) as sender:
        producer = sender.Producer()
        channel = connection.channel()  # prefetch 1: the rest waits in the folder
        channel.basic_qos(0, 1, False)
        with connection.Consumer(queues, channel=channel, callbacks=[take]):
            for queue in ("pq", "plain"):
                for n, priority in sent:
                    producer.publish({"queue": queue, "n": n}, routing_key=queue, priority=priority)
            connection.drain_events(timeout=2)  # pq's highest: 5 (200, as 10)
            producer.publish({"queue": "pq", "n": 8}, routing_key="pq", priority=10)
            time.sleep(0.3)  # while 5 runs: seen by then, with inotify or polling
            while len(received) < 2 * len(sent) + 1:
                connection.drain_events(timeout=2)
    by_queue = {q: [(n, p) for queue, n, p in received if queue == q] for q in ("pq", "plain")}
    # 8 came behind a backlog, and goes before all of it but 5 (its priority, earlier).
    assert [n for n, _ in by_queue["pq"]] == [5, 8, 4, 6, 1, 3, 2, 7]
    assert [n for n, _ in by_queue["plain"]] == [1, 2, 3, 4, 5, 6, 7]
    assert dict(by_queue["plain"])[2] is None  # sent without one: none, not 0


def test_declaring_a_queue_again_with_other_arguments_fails_as_on_rabbitmq(connection):
    channel = connection.default_channel
    Queue("jobs")(channel).declare()
    Queue("jobs")(channel).declare()  # the same: fine
    with pytest.raises(PreconditionFailed, match="inequivalent arg 'x-max-priority'"):
        Queue("jobs", max_priority=10)(channel).declare()
    Queue("ranked", max_priority=10)(channel).declare()
    with pytest.raises(PreconditionFailed, match="received none but current is 10"):
        Queue("ranked")(channel).declare()
    Queue("ranked")(channel).delete()
    Queue("ranked")(channel).declare()  # deleted: declared anew


def test_purge(connection, tmp_path):
    queue = connection.SimpleQueue("q")
    for n in range(3):
        queue.put({"n": n})
    assert queue.clear() == 3
    assert queue_files(tmp_path) == []


def test_fanout_reaches_every_bound_queue_and_unbinds_on_delete(connection):
    exchange = Exchange("news", type="fanout")
    channel = connection.default_channel
    queues = [Queue(name, exchange, channel=channel) for name in ("a", "b")]
    for queue in queues:
        queue.declare()
    connection.Producer(exchange=exchange).publish({"hello": 1}, declare=[exchange])
    for queue in queues:
        message = queue.get()
        assert message.payload == {"hello": 1}
        message.ack()
    queues[0].delete()
    connection.Producer(exchange=exchange).publish({"hello": 2})
    assert queues[1].get().payload == {"hello": 2}
    assert channel.basic_get("a") is None


def consumer_count(connection, queue):
    return connection.default_channel.queue_declare(queue, passive=True).consumer_count


def test_queue_declare_counts_the_consumers_of_every_process(connection, tmp_path):
    options = connection.transport_options
    assert consumer_count(connection, "q") == 0
    with Connection("devfs://", transport_options=options) as other:
        consumer = other.Consumer([Queue("q")], callbacks=[lambda body, message: None])
        consumer.consume()
        assert consumer_count(connection, "q") == 1
        consumer.cancel()
        assert consumer_count(connection, "q") == 0
        consumer.consume()
    assert consumer_count(connection, "q") == 0  # gone with its connection
    # The queue stays, declared, as on RabbitMQ; with no consumer left in its record.
    (record,) = (tmp_path / "data" / "control").glob("*.queue")
    assert json.loads(record.read_text())["consumers"] == []


# A consumer in another process, killed by the test: it cannot say it left.
CONSUMER = """
import sys, time
from kombu import Connection, Queue
import celery_devfs
options = celery_devfs.celery_settings(sys.argv[1])["broker_transport_options"]
with Connection("devfs://", transport_options=options) as connection:
    connection.Consumer([Queue("q")], callbacks=[lambda body, message: None]).consume()
    print("consuming", flush=True)
    time.sleep(60)
"""


def consuming(code, data):
    """A process running `code` on the data folder, once it says it consumes."""
    process = subprocess.Popen(
        [sys.executable, "-c", code, data], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "consuming\n"
    return process


def test_a_killed_consumer_is_not_counted(connection, tmp_path):
    process = consuming(CONSUMER, tmp_path / "data")
    try:
        assert consumer_count(connection, "q") == 1
    finally:
        process.kill()
        process.wait()
    assert consumer_count(connection, "q") == 0


def test_an_auto_delete_queue_goes_when_its_last_consumer_leaves(connection):
    exchange = Exchange("news", type="fanout")
    queue = Queue("a", exchange, auto_delete=True)
    first, second = (connection.Consumer([queue], callbacks=[print]) for _ in range(2))
    first.consume()
    second.consume()
    first.cancel()
    assert connection.default_channel.get_table("news") != []  # one consumer left
    second.cancel()
    assert connection.default_channel.get_table("news") == []


def test_a_message_older_than_its_queues_ttl_is_never_delivered(connection, tmp_path):
    queue = Queue("q", message_ttl=0.2)  # x-message-ttl: 200 ms
    producer = connection.Producer()
    producer.publish({"n": 1}, routing_key="q", declare=[queue])
    time.sleep(0.2 + messages.TTL_GRACE_MS / 1000 + 0.1)
    producer.publish({"n": 2}, routing_key="q")
    message = queue(connection.default_channel).get()
    assert message.payload == {"n": 2}
    message.ack()
    assert queue_files(tmp_path) == []  # the expired one is gone too


def test_a_message_past_its_own_expiration_is_never_delivered(connection):
    producer = connection.Producer()
    producer.publish({"n": 1}, routing_key="q", declare=[Queue("q")], expiration=0.1)
    producer.publish({"n": 2}, routing_key="q", expiration=60)
    time.sleep(0.1 + messages.TTL_GRACE_MS / 1000 + 0.1)
    message = connection.default_channel.basic_get("q")
    assert connection.default_channel.message_to_python(message).payload == {"n": 2}


# A monitor in another process: a queue bound to a topic exchange with Celery's
# event queue arguments (1 s expiry here, not 60), consumed until the test kills it.
MONITOR = """
import sys, time
from kombu import Connection, Exchange, Queue
import celery_devfs
options = celery_devfs.celery_settings(sys.argv[1])["broker_transport_options"]
queue = Queue("ev.1", Exchange("ev", type="topic"), "#", expires=1, message_ttl=0.5)
with Connection("devfs://", transport_options=options) as connection:
    connection.Consumer([queue], callbacks=[lambda body, message: None], no_ack=True).consume()
    print("consuming", flush=True)
    time.sleep(60)
"""


def test_a_queue_whose_consumer_was_killed_expires_with_its_binding_and_messages(
    connection, tmp_path
):
    channel = connection.default_channel
    process = consuming(MONITOR, tmp_path / "data")
    try:
        time.sleep(1.2)  # past its expiry, but its consumer lives: kept
        channel.expire()
        assert [row.queue for row in channel.get_table("ev")] == ["ev.1"]
    finally:
        process.kill()
        process.wait()
    producer = connection.Producer(exchange=Exchange("ev", type="topic"))
    producer.publish({"event": 1}, routing_key="worker.heartbeat")
    assert len(queue_files(tmp_path)) == 1  # the binding stays until the expiry
    channel.expire()
    assert channel.get_table("ev") != []  # unused for less than 1 s
    time.sleep(0.6)  # past the message TTL
    channel.expire()
    assert queue_files(tmp_path) == []  # the event is gone, the binding is not yet
    producer.publish({"event": 2}, routing_key="worker.heartbeat")
    time.sleep(0.5)
    channel.expire()
    assert channel.get_table("ev") == []
    assert queue_files(tmp_path) == []
    producer.publish({"event": 3}, routing_key="worker.heartbeat")
    assert queue_files(tmp_path) == []  # nothing grows any more
    assert list((tmp_path / "data" / "control").glob("*.queue")) == []
