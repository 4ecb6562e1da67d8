"""kombu's own transport integration classes (t/integration/common.py, from the sdist
of the kombu installed here) on the development transport, as kombu's
t/integration/test_py_amqp.py runs them on RabbitMQ: connecting, a broker that
cannot be used, exchange types, TTLs, priorities, ack/reject/requeue, the event
loop. Every test passes: celery_devfs 1.1.0 failed six (a devfs:// without a data
folder worked, in ./data_in; one drain_events delivered one message, where a RabbitMQ
connection delivers every one ready)."""

import sys

import pytest

from conformance import sdist_tests
from conftest import run

MODULE = """
import celery_devfs
import kombu
import pytest

from .common import (
    BaseEventLoop, BaseExchangeTypes, BaseMessage, BasePriority, BaseTimeToLive,
    BasicFunctionality,
)


@pytest.fixture
def connection(tmp_path):
    settings = celery_devfs.celery_settings(tmp_path / "data")
    options = settings["broker_transport_options"]
    return kombu.Connection(settings["broker_url"], transport_options=options)


@pytest.fixture
def invalid_connection():
    celery_devfs.register()
    return kombu.Connection("devfs://")  # no data folder


class test_DevfsBasicFunctionality(BasicFunctionality):
    pass


class test_DevfsExchangeTypes(BaseExchangeTypes):
    pass


class test_DevfsTimeToLive(BaseTimeToLive):
    pass


class test_DevfsPriority(BasePriority):
    PRIORITY_ORDER = "asc"  # higher numbers first, as on RabbitMQ


class test_DevfsMessage(BaseMessage):
    pass


class test_DevfsEventLoop(BaseEventLoop):
    pass
"""


@pytest.mark.slow
def test_kombus_transport_integration_classes_pass_on_the_development_transport(baked):
    suite = sdist_tests("kombu")
    (suite / "t" / "integration" / "test_devfs.py").write_text(MODULE)
    command = [sys.executable, "-m", "pytest", "t/integration/test_devfs.py", "-q",
               "-p", "no:cacheprovider", "-o", "python_classes=test_*"]  # fmt: skip
    done = run(command, suite, check=False, PYTHONPATH=str(baked))
    print(done.stdout[-2000:])
    last = done.stdout.splitlines()[-1] if done.stdout else ""
    assert done.returncode == 0 and last.startswith("30 passed"), done.stdout + done.stderr
