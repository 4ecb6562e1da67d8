"""Celery against servers: do a Celery app's broker and result backend answer (if not,
why, in a few words, and what to do: what `make check`, `make worker` and `make demo`
say), and what a deployed worker and its clients need beyond Celery's settings."""

import functools
import re
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

from celery import signals
from celery.app.backends import BACKEND_ALIASES
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.common import Broadcast
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import native_delayed_delivery as delayed
from kombu.utils.url import maybe_sanitize_url

FIX = "start the servers (make services-up) or set CELERY_ENV=development in .env"
VARIABLES = {"broker": "CELERY_BROKER_URL", "backend": "CELERY_RESULT_BACKEND"}


def url_problem(variable, url):
    """What is wrong with a broker or backend URL that Celery would stop on with a
    traceback, as one line with the fix; None when nothing is."""
    schemes = {"CELERY_BROKER_URL": TRANSPORT_ALIASES, "CELERY_RESULT_BACKEND": BACKEND_ALIASES}
    parts = urlsplit(url)
    scheme = parts.scheme.partition("+")[0]
    if scheme not in schemes[variable]:
        return (
            f"{variable}={masked(url)!r} has an unknown scheme {scheme + '://'!r}; use "
            "amqp://user:password@host:5672// for RabbitMQ or redis://host:6379/0 for "
            "Redis (see .env.example)"
        )
    if scheme == "rediss" and not parse_qs(parts.query).get("ssl_cert_reqs"):
        return (
            f"{variable}={masked(url)!r} needs to say how to check Redis's certificate; "
            "end it with ?ssl_cert_reqs=required (or optional, or none)"
        )
    return None


def masked(url):
    """The URL with its password replaced by **."""
    return maybe_sanitize_url(url) if "@" in url else url


def reason(exc):
    """A few words for why a connection failed, from the whole exception chain."""
    chain = []
    while exc is not None and exc not in chain:
        chain, exc = [*chain, exc], exc.__cause__ or exc.__context__
    text = " ".join(f"{type(error).__name__} {error}" for error in chain)
    if found := re.search(r"(inequivalent|invalid) arg '[^']+' for \w+ '[^']*'", text):
        return found[0]  # RabbitMQ's PRECONDITION_FAILED on a queue or exchange
    text = text.lower()
    for words, why in [
        (("certificate verify failed",), "untrusted certificate"),
        (("access_refused", "auth", "password"), "bad credentials"),  # before "refused"
        (("refused",), "connection refused"),
        (("gaierror", "not known"), "unknown host"),
        (("timed out", "timeout"), "timeout"),
    ]:
        if any(word in text for word in words):
            return why
    return f"{type(chain[0]).__name__}: {chain[0]}"


def servers(app, timeout=5):
    """[(name, masked URL, problem or None)] of broker and backend, asked at once in daemon
    threads (a silent server must not hold the process at exit), for `timeout` seconds."""
    found = {"broker": "timeout", "backend": "timeout"}

    def ask(name):
        try:
            if name == "broker":
                ask_broker(app, timeout)
            elif getattr(app.backend, "client", None) is not None:  # Redis: ask the server
                app.backend.client.ping()
            found[name] = None
        except Exception as exc:  # any failure is reported, not raised
            found[name] = reason(exc)

    threads = [threading.Thread(target=ask, args=(name,), daemon=True) for name in found]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    urls = {"broker": app.conf.broker_url, "backend": app.conf.result_backend}
    return [(name, masked(url), found[name]) for name, url in urls.items()]


def ask_broker(app, timeout=5):
    """Connect to the broker and, on RabbitMQ, declare the project's queue as a worker
    will: a queue or exchange left with other settings (an older version of the project
    made them classic and direct) fails here, not in a worker's traceback."""
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        if connection.transport.driver_type == "amqp":
            queue = app.amqp.queues[app.conf.task_default_queue]
            queue.bind(connection.default_channel).declare()


def problem(name, why, app):
    """Why a server does not answer, and what to do about it."""
    if why == "bad credentials":
        return f"unreachable ({why}); check the user and password in {VARIABLES[name]} in .env"
    if why == "untrusted certificate":  # OpenSSL reads SSL_CERT_FILE, never .env
        return (
            f"unreachable ({why}); if a CA of your own signed it, set SSL_CERT_FILE to "
            "its .pem file in the environment"
        )
    if why.startswith("invalid"):  # what RabbitMQ refuses on a quorum queue
        return (
            f"refuses the project's queue ({why}, not for a quorum queue); "
            "DEPLOY.md (RabbitMQ: quorum queues) says what to set instead"
        )
    if why.startswith("inequivalent"):
        return (
            f"has the project's queue declared otherwise ({why}: an older version of the "
            "project?); set CELERY_QUEUE to a new name in .env, or delete them once empty: "
            f"celery -A {app.main} amqp queue.delete NAME; celery -A {app.main} amqp "
            "exchange.delete NAME false"
        )
    return f"unreachable ({why}); {FIX}"


def unreachable(app):
    """One line for each server that does not answer: what make worker (in a terminal)
    and make demo stop with. A deployed `celery -A <package> worker` waits instead."""
    return [f"{name} {url} {problem(name, why, app)}" for name, url, why in servers(app) if why]


def results_kept(app):
    """How many task results the backend holds (Redis: its celery-task-meta-* keys)."""
    backend = app.backend
    if hasattr(backend, "kept"):  # celery_devfs
        return backend.kept()
    return sum(1 for _ in backend.client.scan_iter(match=b"celery-task-meta-*", count=1000))


def connect(app):
    """What the project's app needs from here, in every process that imports it."""
    stop_worker_on_refused_login(app)
    declare_delayed_delivery(app)


def stop_worker_on_refused_login(app):
    """Have `celery -A <package> worker` stop with one line when the broker refuses its
    login or its queue (Celery's own: a traceback); a broker that is down is waited
    for, as Celery does. Development's broker has neither: nothing to check."""

    def check(**kwargs):
        if app.conf.broker_url.startswith("devfs:"):
            return
        try:
            ask_broker(app)
        except Exception as exc:  # down or slow: the worker waits for it, as before
            why, url = reason(exc), masked(app.conf.broker_url)
            if why == "bad credentials":
                raise SystemExit(
                    f"ERROR: broker {url} {problem('broker', why, app)} "
                    "(write @ : / % in a password as %40 %3A %2F %25)"
                ) from None
            if why.startswith(("inequivalent", "invalid")):
                raise SystemExit(f"ERROR: broker {url} {problem('broker', why, app)}") from None

    signals.celeryd_init.connect(check, weak=False)


class Consumer(CeleryConsumer):
    """Celery's worker consumer (the setting worker_consumer), in both environments:
    - it tries a lost broker again every 2 s. Celery leaves the intervals to kombu's
      defaults, 2 s, then 4, 6 ... up to 30: a worker stayed idle up to 30 s after
      RabbitMQ was back;
    - a second worker with the name of one running stops with one line. Its remote-
      control queue is the first's alone (exclusive): RabbitMQ says RESOURCE_LOCKED,
      and Celery stops with a traceback."""

    RETRY = {"interval_start": 1, "interval_step": 1, "interval_max": 2}

    def ensure_connected(self, conn):
        conn.ensure_connection = functools.partial(conn.ensure_connection, **self.RETRY)
        return super().ensure_connected(conn)

    def start(self):
        try:
            return super().start()
        except Exception as exc:
            said = f"{exc} {exc.__cause__}"  # kombu's InconsistencyError, from RabbitMQ's
            if getattr(exc, "code", None) != 405 and "using this process mailbox" not in said:
                raise
            held = re.search(r"\(process (\d+) holds it\)", said)  # development says which
            first = f" (process {held[1]})" if held else ""
            sys.__stderr__.write(  # not through the worker's log (its stderr)
                f"ERROR: a worker named {self.hostname} is running already{first}; stop it, "
                f"or give this one another name: celery -A {self.app.main} worker -n NAME@%h\n"
            )
            raise SystemExit(1) from None


def declare_delayed_delivery(app):
    """Before a process first sends a countdown through RabbitMQ's delay queues (Celery's
    native delayed delivery, settings.py), declare them and the app's queues, as a
    worker does when it starts. Else, before any worker has run, .apply_async(countdown=)
    raises NotFound, or the task is dropped when due: no queue would be bound yet."""
    declared = set()

    def declare(exchange=None, **kwargs):
        url, name = app.conf.broker_url, getattr(exchange, "name", exchange)  # or a str
        if not str(name).startswith(delayed.level_name(0)[:-1]) or url in declared:
            return
        with app.connection_for_write() as connection:
            delayed.declare_native_delayed_delivery_exchanges_and_queues(
                connection, app.conf.broker_native_delayed_delivery_queue_type
            )
            for queue in app.amqp.queues.values():
                if isinstance(queue, Broadcast):  # as the worker's DelayedDelivery step
                    continue
                queue.bind(connection.default_channel).declare()
                delayed.bind_queue_to_native_delayed_delivery_exchange(connection, queue)
        declared.add(url)

    signals.before_task_publish.connect(declare, weak=False)
