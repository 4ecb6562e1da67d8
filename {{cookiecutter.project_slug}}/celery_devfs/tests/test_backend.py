"""backend.py in-process: chords counted in a locked file (group headers, nested
chords, large headers), and get_many, the native join, with and without inotify."""

import os
import threading
import time

import celery_devfs
import pytest
from celery import Celery, chain, chord, group
from celery.contrib.testing.worker import start_worker
from celery_devfs import notify
from celery_devfs.backend import expire_results
from celery_devfs.testing import WATCHES, wait_until, watch_as


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = Celery("backend_tests", set_as_current=False)
    app.conf.update(celery_devfs.celery_settings(tmp_path_factory.mktemp("backend") / "data"))
    app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1)

    @app.task(name="backend_tests.add")
    def add(numbers):
        return sum(n if isinstance(n, int) else sum(n) for n in numbers)

    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False):
        yield app


def add(app, *args):
    return app.tasks["backend_tests.add"].si(*args)


def test_a_chord_whose_header_holds_a_group(app):
    header = [group(add(app, [1]), add(app, [2])), add(app, [3])]
    result = chord(header, app.tasks["backend_tests.add"].s()).delay()
    assert result.get(timeout=30) == 6


def test_a_chord_in_a_chain_in_a_chord(app):
    inner = chord([add(app, [2]), add(app, [3])], app.tasks["backend_tests.add"].s())
    outer = chord([chain(add(app, [1]), inner), add(app, [4])], app.tasks["backend_tests.add"].s())
    assert outer.delay().get(timeout=30) == 9


def test_a_chain_that_ends_in_a_group_in_a_chord_header(app):
    header = [chain(add(app, [1]), group(add(app, [2]), add(app, [3]))), add(app, [4])]
    result = chord(header, app.tasks["backend_tests.add"].s()).delay()
    assert result.get(timeout=30) == 9  # [[2, 3], 4]: its parts counted as two results


def test_a_chord_with_a_large_header_counts_each_part_once(app):
    signature = chord([add(app, [n]) for n in range(100)], app.tasks["backend_tests.add"].s())
    result = signature.delay()
    assert result.get(timeout=60) == sum(range(100))
    counter = app.backend.get_key_for_chord(result.parent.id)
    # Counted to the end, then deleted: by the last part's process once it has sent
    # the body (Celery's order), so maybe a moment after the body's result arrives.
    wait_until(lambda: app.backend.get(counter) is None, 10, "the chord counter to go")


@pytest.mark.parametrize("notifications", WATCHES)
def test_get_many_returns_each_result_once_as_it_arrives(app, notifications, request):
    request.addfinalizer(watch_as(notifications))
    backend, ids = app.backend, [f"get-many-{notifications}-{n}" for n in range(3)]
    backend.store_result(ids[0], 0, "SUCCESS")

    def later():
        for n in (1, 2):
            time.sleep(0.2)
            backend.store_result(ids[n], n, "SUCCESS")

    threading.Thread(target=later).start()
    # Each read when its file arrives: waiting for the 60 s interval would time out.
    found = dict(backend.get_many(ids, timeout=10, interval=60))
    assert {task_id: meta["result"] for task_id, meta in found.items()} == {
        task_id: n for n, task_id in enumerate(ids)
    }


def test_get_many_times_out_on_a_result_that_never_comes(app):
    from celery.exceptions import TimeoutError as CeleryTimeoutError

    with pytest.raises(CeleryTimeoutError):
        list(app.backend.get_many(["never"], timeout=0.3))


def test_a_worker_deletes_expired_results_without_beat(tmp_path):
    """As Redis drops a key at its TTL: a worker looks every min(30 s, result_expires)
    (a real worker: the template's tests/test_parity.py)."""
    app = Celery("expiry_tests", set_as_current=False)
    app.conf.update(celery_devfs.celery_settings(tmp_path / "data"), result_expires=1)
    app.backend.store_result("old", 1, "SUCCESS")
    app.backend.store_result("new", 2, "SUCCESS")
    assert app.backend.kept() == 2
    looks = []

    class Consumer:  # what Celery's worker_ready sends: the consumer, with its timer
        timer = type("Timer", (), {"call_repeatedly": lambda self, *a: looks.append(a)})()

    Consumer.app = app
    expire_results(Consumer())
    ((every, look),) = looks
    assert every == 1
    old = tmp_path / "data" / "results" / "celery-task-meta-old"
    os.utime(old, (time.time() - 2, time.time() - 2))
    look()
    assert app.backend.kept() == 1 and not old.exists()


def test_a_worker_lists_the_results_only_once_the_oldest_kept_may_have_expired(
    tmp_path, monkeypatch
):
    """A look stats every result file (tens of thousands on a long-used folder): a
    worker's idle CPU would grow with them, which a Redis worker's does not."""
    from celery_devfs import backend

    app = Celery("expiry_tests", set_as_current=False)
    app.conf.update(celery_devfs.celery_settings(tmp_path / "data"), result_expires=60)
    results, now = tmp_path / "data" / "results", time.time()

    def store(task_id, written):
        app.backend.store_result(task_id, 1, "SUCCESS")
        os.utime(results / f"celery-task-meta-{task_id}", (written, written))

    def kept():
        return sorted(p.name.removeprefix("celery-task-meta-") for p in results.iterdir())

    store("first", now)
    listings, scandir = [], os.scandir
    monkeypatch.setattr(backend.os, "scandir", lambda path: listings.append(1) or scandir(path))
    monkeypatch.setattr(backend.time, "time", lambda: now)
    app.backend.cleanup_quietly()
    app.backend.cleanup_quietly()  # 0 s later: "first" cannot have expired
    now += 59
    store("later", now)  # newer: expires after "first"
    app.backend.cleanup_quietly()
    assert (len(listings), kept()) == (1, ["first", "later"])
    now += 2  # "first" is 61 s old
    app.backend.cleanup_quietly()
    assert (len(listings), kept()) == (2, ["later"])
    app.backend.cleanup_quietly()  # "later" is 2 s old
    now += 58
    app.backend.cleanup_quietly()  # 60 s old: expired, as a Redis key at its TTL
    assert (len(listings), kept()) == (3, [])


FDS = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"  # Linux; macOS


def open_files():
    return len(os.listdir(FDS))


def inotify_instances():
    """This process's inotify descriptors (none where there is no inotify)."""
    found = 0
    for fd in os.listdir(FDS):
        try:
            found += os.readlink(f"{FDS}/{fd}") == "anon_inode:inotify"
        except OSError:  # closed meanwhile, or not a link (macOS)
            pass
    return found


@pytest.mark.parametrize("notifications", ["inotify", "doorbell"])
def test_threads_waiting_for_results_share_one_watch(app, notifications, request):
    """A threaded web server: Celery gives each thread a result backend of its own, and
    200 threads wait for their results at once; open files and inotify instances stay
    flat (Linux allows 128 instances per user; macOS 256 open files by default)."""
    request.addfinalizer(watch_as(notifications))
    ids = [f"threads-{notifications}-{n}" for n in range(200)]
    results, ready = {}, threading.Barrier(len(ids) + 1)
    before = open_files(), inotify_instances()

    def wait(task_id):
        ready.wait()
        results[task_id] = app.AsyncResult(task_id).get(timeout=30)

    threads = [threading.Thread(target=wait, args=(task_id,)) for task_id in ids]
    for thread in threads:
        thread.start()
    ready.wait()
    time.sleep(0.5)  # every thread in get(), waiting
    during = open_files(), inotify_instances()
    for n, task_id in enumerate(ids):
        app.backend.store_result(task_id, n, "SUCCESS")
    for thread in threads:
        thread.join()
    assert results == {task_id: n for n, task_id in enumerate(ids)}
    assert during[0] - before[0] <= 2 and during[1] - before[1] <= 1, (before, during)


def test_a_lost_wake_up_costs_a_second_not_the_timeout(app, request, monkeypatch):
    """A writer out of descriptors cannot ring the doorbell: the results are still read."""
    request.addfinalizer(watch_as("doorbell"))
    monkeypatch.setattr(notify, "ring", lambda folder, name: None)
    backend, ids = app.backend, ["lost-wake-up-1", "lost-wake-up-2"]
    threading.Timer(0.2, lambda: [backend.store_result(i, 1, "SUCCESS") for i in ids]).start()
    assert len(dict(backend.get_many(ids, timeout=10, interval=60))) == 2
