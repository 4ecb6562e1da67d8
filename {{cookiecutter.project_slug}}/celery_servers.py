"""Do a Celery app's broker and result backend answer? If not, why, in a few words,
and what to do: what `make check`, `make worker` and `make demo` say."""

import functools
import threading
import time

from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.utils.url import maybe_sanitize_url

FIX = "start the servers (make services-up) or set CELERY_ENV=development in .env"
VARIABLES = {"broker": "CELERY_BROKER_URL", "backend": "CELERY_RESULT_BACKEND"}


def masked(url):
    """The URL with its password replaced by **."""
    return maybe_sanitize_url(url) if "@" in url else url


def reason(exc):
    """A few words for why a connection failed, from the whole exception chain."""
    chain = []
    while exc is not None and exc not in chain:
        chain, exc = [*chain, exc], exc.__cause__ or exc.__context__
    text = " ".join(f"{type(error).__name__} {error}".lower() for error in chain)
    for words, why in [
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
                with app.connection_for_write() as connection:
                    connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
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


def problem(name, why):
    """Why a server does not answer, and what to do about it."""
    if why == "bad credentials":
        return f"unreachable ({why}); check the user and password in {VARIABLES[name]} in .env"
    return f"unreachable ({why}); {FIX}"


def unreachable(app):
    """One line for each server that does not answer: what make worker (in a terminal)
    and make demo stop with. A deployed `celery -A <package> worker` waits instead."""
    return [f"{name} {url} {problem(name, why)}" for name, url, why in servers(app) if why]


def stop_worker_on_refused_login(app):
    """Have `celery -A <package> worker` stop with one line when the broker refuses its
    login (Celery's own: an AccessRefused traceback); a broker that is down is waited
    for, as Celery does. Development's broker has no login: nothing to check."""
    from celery import signals

    def check(**kwargs):
        if app.conf.broker_url.startswith("devfs:"):
            return
        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=5)
        except Exception as exc:  # down or slow: the worker waits for it, as before
            if reason(exc) == "bad credentials":
                url = masked(app.conf.broker_url)
                raise SystemExit(
                    f"ERROR: broker {url} {problem('broker', 'bad credentials')} "
                    "(write @ : / % in a password as %40 %3A %2F %25)"
                ) from None

    signals.celeryd_init.connect(check, weak=False)


class Consumer(CeleryConsumer):
    """Celery's worker consumer, trying a lost broker again every 2 s (the setting
    worker_consumer). Celery leaves the intervals to kombu's defaults, 2 s, then 4, 6 ...
    up to 30: a worker stayed idle up to 30 s after RabbitMQ was back."""

    RETRY = {"interval_start": 1, "interval_step": 1, "interval_max": 2}

    def ensure_connected(self, conn):
        conn.ensure_connection = functools.partial(conn.ensure_connection, **self.RETRY)
        return super().ensure_connected(conn)
