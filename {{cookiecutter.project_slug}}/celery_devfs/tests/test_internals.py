"""The private kombu and Celery names celery_devfs relies on (internals.py) are all
there, as celery_devfs expects them; and how an untested Celery or kombu is met."""

import inspect

import celery_devfs
import pytest
from celery_devfs import internals
from kombu.transport import virtual

TESTED = "celery 5.7.x and kombu 5.7.x"


def test_nothing_celery_devfs_relies_on_has_moved():
    assert internals.moved() == []


def test_a_changed_signature_a_lost_call_and_a_lost_attribute_are_named(monkeypatch):
    monkeypatch.setattr(virtual.Channel, "_size", lambda self, queue, extra: 0)
    monkeypatch.setattr(virtual.Channel, "queue_bind", lambda self, queue: None)
    monkeypatch.delattr("celery.worker.consumer.mingle.Mingle.compatible_transports")
    assert internals.moved() == [
        "kombu.transport.virtual.Channel._size takes (self, queue, extra), not (self, queue)",
        "kombu.transport.virtual.Channel.queue_bind no longer calls self._queue_bind()",
        "Celery's Mingle has no compatible_transports",
    ]


def test_moved_reads_every_name_internals_lists():
    """Each list of internals.py is read by moved(): a new list must be checked too."""
    lists = {name for name, value in vars(internals).items() if name.isupper()}
    source = inspect.getsource(internals.moved)
    assert {name for name in lists if name not in source} == set()


def test_the_installed_versions_are_those_tested():
    celery_devfs.check_versions(moved=lambda: pytest.fail("moved() read for tested versions"))


def test_an_untested_minor_in_which_nothing_moved_is_taken():
    newer = {"celery": "5.8.0", "kombu": "5.8.1"}
    celery_devfs.check_versions(installed=newer.__getitem__)  # moved(): the real check


def test_an_untested_minor_in_which_something_moved_stops_with_what_and_what_to_do():
    newer = {"celery": "5.8.0", "kombu": "5.7.2"}
    changes = ["kombu.transport.virtual.Channel._size is gone", "another"]
    with pytest.raises(celery_devfs.VersionError) as error:
        celery_devfs.check_versions(installed=newer.__getitem__, moved=lambda: changes)
    assert str(error.value) == (
        f"celery_devfs {celery_devfs.__version__} (the development broker) is tested with "
        f"{TESTED}, and celery 5.8.0 is installed, in which "
        "kombu.transport.virtual.Channel._size is gone (and 1 more): take a newer "
        f"celery_devfs (cruft update), or install {TESTED} for development; production "
        "does not use celery_devfs"
    )


def test_another_major_version_stops_even_when_nothing_moved():
    newer = {"celery": "6.0.0", "kombu": "5.7.0"}
    with pytest.raises(celery_devfs.VersionError, match="celery 6.0.0 is installed, a major"):
        celery_devfs.check_versions(installed=newer.__getitem__, moved=list)
