"""Do the broker and the result backend answer? If not, why, in a few words.

`make check`, `make demo` and a starting worker all report through here: one
line per server, with the URL (password masked), why, and what to do.
"""

import socket

from kombu.utils.url import maybe_sanitize_url

FIX = "start the servers (make services-up) or set CELERY_ENV=development in .env"


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


def servers(app):
    """(name, URL with the password masked, problem or None) of the broker and the backend."""
    return [
        ("broker", masked(app.conf.broker_url), broker_problem(app)),
        ("backend", masked(app.conf.result_backend), backend_problem(app)),
    ]


def unreachable(app):
    """One line for each server that does not answer."""
    return [f"{name} {url} unreachable ({why}); {FIX}" for name, url, why in servers(app) if why]
