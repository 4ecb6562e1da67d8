"""Where messages and results go, and whether they answer: python -m {{ cookiecutter.project_slug }}.check.

Exits 1 when the broker or the result backend cannot be reached, with one
line each that says why and what to do.
"""

import socket
import sys

from kombu.utils.url import maybe_sanitize_url

from . import app, settings

FIX = "start the servers (make services-up) or set CELERY_ENV=development in .env"


def reason(exc):
    """A few words for why a connection failed, from the whole exception chain."""
    chain = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for error in chain:
        text = str(error).lower()
        if isinstance(error, ConnectionRefusedError) or "refused" in text:
            return "connection refused"
        if isinstance(error, socket.gaierror) or "name or service not known" in text:
            return "unknown host"
        if "access_refused" in text or "auth" in text or "password" in text:
            return "bad credentials"
        if isinstance(error, TimeoutError) or "timed out" in text:
            return "timeout"
    return f"{type(chain[0]).__name__}: {chain[0]}"


def broker_problem(celery_app):
    """None when the broker answers, else why not."""
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=5)
    except Exception as exc:  # any failure is reported, not raised
        return reason(exc)
    return None


def backend_problem(celery_app):
    """None when the result backend answers, else why not."""
    try:
        backend = celery_app.backend  # the file backend checks its folder here
        client = getattr(backend, "client", None)  # Redis: ask the server
        if client is not None:
            client.ping()
    except Exception as exc:  # any failure is reported, not raised
        return reason(exc)
    return None


def main():
    env = settings.read_environment()
    print(f"environment: {env.get('CELERY_ENV') or 'development'}")
    failed = False
    for name, url, problem in (
        ("broker", app.conf.broker_url, broker_problem),
        ("backend", app.conf.result_backend, backend_problem),
    ):
        why = problem(app)
        if why is None:
            print(f"{name + ':':9}{maybe_sanitize_url(url)} ok")
        else:
            failed = True
            print(f"{name + ':':9}{maybe_sanitize_url(url)} unreachable ({why}); {FIX}")
    if app.conf.broker_url.startswith("filesystem"):
        print(f"{'data:':9}{settings.data_folders(env)['queue'].parent}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
