"""The private kombu and Celery names celery_devfs relies on (internals.py) are all
there, as celery_devfs expects them; and the versions it was tested with are checked."""

import importlib
import inspect

import celery_devfs
import pytest
from celery import Celery
from celery.worker.consumer.mingle import Mingle
from celery_devfs import internals
from celery_devfs.backend import Backend
from kombu import Connection


def resolve(dotted):
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for name in parts[end:]:
            found = getattr(found, name)
        return found
    raise ImportError(dotted)


@pytest.mark.parametrize("dotted", [*internals.KOMBU, *internals.CELERY])
def test_each_private_function_is_there_with_the_parameters_used(dotted):
    expected = {**internals.KOMBU, **internals.CELERY}[dotted]
    assert tuple(inspect.signature(resolve(dotted)).parameters) == expected


@pytest.mark.parametrize("dotted", internals.KOMBU_CALLS)
def test_kombu_still_calls_the_hooks_that_have_no_default(dotted):
    assert internals.KOMBU_CALLS[dotted] in inspect.getsource(resolve(dotted))


def test_each_private_attribute_is_there(tmp_path):
    settings = celery_devfs.celery_settings(tmp_path / "data")
    with Connection("devfs://", transport_options=settings["broker_transport_options"]) as conn:
        for name in internals.KOMBU_TRANSPORT_ATTRIBUTES:
            assert hasattr(conn.transport, name), name
    backend = Backend(app=Celery(), url=settings["result_backend"])
    for name in internals.CELERY_BACKEND_ATTRIBUTES:
        assert hasattr(backend, name), name
    for name in internals.CELERY_MINGLE_ATTRIBUTES:
        assert hasattr(Mingle, name), name


def test_the_installed_versions_are_those_tested():
    celery_devfs.check_versions()  # this environment's: the ones tested


def test_another_minor_version_stops_development_with_what_to_do():
    newer = {"celery": "5.8.0", "kombu": "5.7.2"}
    with pytest.raises(celery_devfs.VersionError) as error:
        celery_devfs.check_versions(installed=newer.__getitem__)
    assert str(error.value) == (
        f"celery_devfs {celery_devfs.__version__} (the development broker) is tested with "
        "celery 5.7.x and kombu 5.7.x, and celery 5.8.0 is installed: take a newer "
        "celery_devfs (cruft update), or install celery 5.7.x and kombu 5.7.x for "
        "development; production does not use celery_devfs"
    )
