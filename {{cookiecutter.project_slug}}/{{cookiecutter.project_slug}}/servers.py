"""Do the broker and the result backend answer? If not, why, in a few words.

`make check`, `make demo` and a starting worker all report through here: one
line per server, with the URL (password masked), why, and what to do.
"""

import socket
import threading
import time

from kombu.utils.url import maybe_sanitize_url

FIX = "start the servers (make services-up) or set CELERY_ENV=development in .env"
TIMEOUT = 5  # seconds: a server that accepts connections but never answers is down too


def reason(exc):
    """A few words for why a connection failed, from the whole exception chain."""
    chain = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for error in chain:
        text = str(error).lower()
        if "access_refused" in text or "auth" in text or "password" in text:
            return "bad credentials"  # before "refused": RabbitMQ says ACCESS_REFUSED
        if isinstance(error, ConnectionRefusedError) or "refused" in text:
            return "connection refused"
        if isinstance(error, socket.gaierror) or "name or service not known" in text:
            return "unknown host"
        if isinstance(error, TimeoutError) or "timed out" in text or "timeout" in text:
            return "timeout"
    return f"{type(chain[0]).__name__}: {chain[0]}"


def broker_problem(app):
    """None when the broker answers, else why not."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=5)
    except Exception as exc:  # any failure is reported, not raised
        return reason(exc)
    return None


def backend_problem(app):
    """None when the result backend answers, else why not."""
    try:
        backend = app.backend  # the file backend checks its folder here
        client = getattr(backend, "client", None)  # Redis: ask the server
        if client is not None:
            client.ping()
    except Exception as exc:  # any failure is reported, not raised
        return reason(exc)
    return None


def masked(url):
    """The URL with its password replaced by **."""
    return maybe_sanitize_url(url) if "@" in url else url


def servers(app, timeout=TIMEOUT):
    """(name, URL with the password masked, problem or None) of the broker and the backend.

    Both are asked at once, and a silent one is given up on after `timeout`
    seconds: a socket timeout alone can be longer (redis_socket_timeout) or
    apply to each of several steps."""
    problems = ["timeout", "timeout"]  # until a thread says otherwise

    def ask(index, problem):
        problems[index] = problem(app)

    # Daemon threads: one stuck on a silent server must not hold the process at exit.
    threads = [
        threading.Thread(target=ask, args=(i, problem), daemon=True)
        for i, problem in enumerate((broker_problem, backend_problem))
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [
        ("broker", masked(app.conf.broker_url), problems[0]),
        ("backend", masked(app.conf.result_backend), problems[1]),
    ]


def unreachable(app):
    """One line for each server that does not answer."""
    return [f"{name} {url} unreachable ({why}); {FIX}" for name, url, why in servers(app) if why]
