"""What a user's first month does with exchanges and queues, the same on celery_devfs
as on RabbitMQ: each test runs on both, through kombu, and expects the same outcome.
A new process is imitated by forgetting what this one declared (devfs keeps it per
process, as kombu's virtual transports do; RabbitMQ: per broker)."""

import subprocess
import sys
import time
import uuid

import pytest
from amqp.exceptions import ChannelError, PreconditionFailed
from celery_devfs import names
from celery_devfs.exchanges import headers_match, topic_matches
from celery_devfs.transport import Transport
from kombu import Exchange, Queue

SETUPS = ["devfs", "production"]

# Binding keys and the routing keys each takes, as RabbitMQ's topic exchange routes.
TOPIC = {
    "a.*": ["a.b"],
    "a.#": ["a", "a.b", "a.b.c"],
    "#.z": ["q.z", "z"],
    "*.*.c": ["a.b.c"],
    "#": ["a", "a.b", "a.b.c", "q.z", "z", "x.y"],
}
ODD_NAMES = [
    "with a space", "a/b", "../up", "colon:star*", "tilde~", "ünïcödé ✓", "%41%", ".", "x" * 255,
]  # fmt: skip

DECLARE_EXCLUSIVE = """
import os
from celery_devfs.tests.app import make_app
from kombu import Queue
with make_app(os.environ).connection_for_write() as connection:
    try:
        Queue(NAME, exclusive=True)(connection.default_channel).declare()
        print("declared")
    except Exception as exc:
        print(type(exc).__name__)
"""


@pytest.fixture(params=SETUPS)
def connected(request, setup_for):
    """(connection, unique name prefix, forget()) on devfs or RabbitMQ; what the test
    declares with the prefix is deleted at its end."""
    env, app = setup_for(request.param)
    prefix = f"route-{uuid.uuid4().hex[:6]}-"
    declared = []
    with app.connection_for_write() as connection:

        def forget():  # as if the next call came from another process
            if request.param == "devfs":
                Transport.states.clear()
            connection.release()
            connection.connect()

        yield connection, prefix, forget, declared
        channel = connection.channel()
        for entity in declared:
            entity(channel).delete()


def got(connection, queue, wait=0.3):
    time.sleep(wait)
    found = []
    while (message := Queue(queue)(connection.default_channel).get(no_ack=True)) is not None:
        found.append(message.payload)
    return found


def bind(connection, declared, queue):
    declared.append(queue)
    queue(connection.default_channel).declare()
    return queue


def test_a_topic_exchange_routes_words_as_rabbitmq_from_a_process_that_never_declared_it(
    connected,
):
    connection, prefix, forget, declared = connected
    exchange = Exchange(f"{prefix}topic", type="topic")
    declared.append(exchange)
    for n, key in enumerate(TOPIC):
        bind(connection, declared, Queue(f"{prefix}{n}", exchange, routing_key=key))
    forget()
    producer = connection.Producer()
    for key in TOPIC["#"]:
        producer.publish(key, exchange=exchange.name, routing_key=key)
    for n, key in enumerate(TOPIC):
        assert sorted(got(connection, f"{prefix}{n}", wait=0.3 if n == 0 else 0)) == sorted(
            TOPIC[key]
        ), key


def test_fanout_and_headers_exchanges_route_as_rabbitmq(connected):
    connection, prefix, forget, declared = connected
    fanout = Exchange(f"{prefix}fanout", type="fanout")
    headers = Exchange(f"{prefix}headers", type="headers")
    declared += [fanout, headers]
    for n in range(2):
        bind(connection, declared, Queue(f"{prefix}f{n}", fanout))
    bind(connection, declared, Queue(f"{prefix}all", headers, binding_arguments={
        "x-match": "all", "kind": "pdf", "size": "big"}))  # fmt: skip
    bind(connection, declared, Queue(f"{prefix}any", headers, binding_arguments={
        "x-match": "any", "kind": "pdf", "size": "big"}))  # fmt: skip
    forget()
    producer = connection.Producer()
    producer.publish("to all", exchange=fanout.name, routing_key="ignored")
    for sent in ({"kind": "pdf"}, {"kind": "pdf", "size": "big"}, {"kind": "png"}):
        producer.publish(sent, exchange=headers.name, headers=sent)
    assert got(connection, f"{prefix}f0") == got(connection, f"{prefix}f1", 0) == ["to all"]
    assert got(connection, f"{prefix}all", 0) == [{"kind": "pdf", "size": "big"}]
    assert got(connection, f"{prefix}any", 0) == [{"kind": "pdf"}, {"kind": "pdf", "size": "big"}]


def test_any_queue_name_rabbitmq_takes_works_and_a_longer_one_is_refused(connected):
    connection, prefix, forget, declared = connected
    for odd in ODD_NAMES:
        name = (prefix + odd)[:255] if len(odd) > 200 else prefix + odd
        queue = bind(connection, declared, Queue(name, Exchange(""), routing_key=name))
        connection.Producer().publish({"to": name}, routing_key=name)
        forget()
        assert got(connection, name) == [{"to": name}], name
        assert queue(connection.default_channel).queue_declare().message_count == 0
    with pytest.raises(Exception) as refused:
        Queue(prefix + "x" * 255)(connection.channel()).declare()
    print(f"256 bytes: {refused.type.__name__}: {refused.value}")  # RabbitMQ's client: struct.error


def test_a_deleted_queue_takes_its_messages_with_it(connected):
    connection, prefix, forget, declared = connected
    queue = bind(connection, declared, Queue(f"{prefix}deleted"))
    for n in range(2):
        connection.Producer().publish(n, routing_key=queue.name)
    time.sleep(0.3)
    forget()
    if isinstance(connection.transport, Transport):  # RabbitMQ: PRECONDITION_FAILED
        queue(connection.default_channel).delete(if_empty=True)  # not empty: kept
        assert queue(connection.default_channel).queue_declare().message_count == 2
    queue(connection.default_channel).delete()  # as `celery amqp queue.delete` does
    queue(connection.default_channel).declare()
    assert got(connection, queue.name) == []


@pytest.mark.parametrize("setup", SETUPS)
def test_an_exclusive_queue_is_one_processs_alone_until_it_closes(setup, setup_for):
    """What stops a second worker of a running one's name: its remote-control queue."""
    env, app = setup_for(setup)
    name = f"route-{uuid.uuid4().hex[:6]}-exclusive"

    def declare_elsewhere():
        code = DECLARE_EXCLUSIVE.replace("NAME", repr(name))
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        return done.stdout.strip() or done.stderr

    with app.connection_for_write() as connection:
        Queue(name, exclusive=True)(connection.default_channel).declare()
        assert declare_elsewhere() == "ResourceLocked"
    assert declare_elsewhere() == "declared"  # and gone with that process


def test_a_message_over_rabbitmq_4s_limit_is_refused_at_publish(connected):
    """RabbitMQ 4's limit: CI's RabbitMQ has it too (.ci/services). RabbitMQ refuses
    at once only with publisher confirms, as the projects' production settings ask."""
    connection, prefix, forget, declared = connected
    queue = bind(connection, declared, Queue(f"{prefix}large"))
    options = {**connection.transport_options, "confirm_publish": True}
    with connection.clone(transport_options=options) as confirmed:
        with pytest.raises(PreconditionFailed, match="max size"):
            confirmed.Producer().publish("x" * (16 * 1024 * 1024 + 1), routing_key=queue.name)
    with connection.clone(transport_options=options) as confirmed:
        confirmed.Producer().publish("x" * (16 * 1024 * 1024 - 100), routing_key=queue.name)
    assert [len(body) for body in got(connection, queue.name)] == [16 * 1024 * 1024 - 100]


def test_topic_and_headers_matches_are_rabbitmqs():
    assert topic_matches("a.#.c", "a.c") and topic_matches("a.#.c", "a.b.b.c")
    assert topic_matches("*", "") and not topic_matches("*", "a.b")
    assert topic_matches("#.#", "a") and not topic_matches("a.*", "a")
    assert headers_match({"x-match": "all"}, {"anything": 1})  # no argument: all match
    assert not headers_match({"x-match": "any"}, {"anything": 1})
    assert headers_match({"x-match": "any-with-x", "x-k": 1}, {"x-k": 1})
    assert not headers_match({"x-match": "any", "x-k": 1}, {"x-k": 1})
    assert headers_match({"present": None}, {"present": "whatever"})


def test_an_unknown_exchange_type_is_refused_at_declaration(setup_for):
    env, app = setup_for("devfs")
    with app.connection_for_write() as connection:
        with pytest.raises(ChannelError, match="unknown exchange type 'x-delayed-message'"):
            Exchange("later", type="x-delayed-message")(connection.default_channel).declare()


def test_names_on_disk_are_file_names_that_read_back_as_they_were():
    for name in [*ODD_NAMES, "CON", "nul.txt", "LPT1", "celery@host.dq2", "%sha-x"]:
        disk = names.on_disk(name)
        assert "/" not in disk and "~" not in disk and len(disk) <= names.LONG, disk
        assert disk.partition(".")[0].upper() not in names.WINDOWS_DEVICES, disk
        assert names.name_of(disk) == name
    assert names.on_disk("celery@host.dq2") == "celery@host.dq2"  # Celery's names as they are
