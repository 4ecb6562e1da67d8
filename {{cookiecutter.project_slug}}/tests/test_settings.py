"""Settings of both environments, and the mistakes they must catch."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.project_slug }} import settings
from {{ cookiecutter.project_slug }}.celery import create_app

PACKAGE = settings.__package__
PRODUCTION = {
    "CELERY_ENV": "production",
    "CELERY_BROKER_URL": "amqp://user:secret@rabbit:5672//",
    "CELERY_RESULT_BACKEND": "redis://cache:6379/1",
}


@pytest.mark.parametrize(
    ("dev_broker", "broker_url", "backend_scheme"),
    [("devfs", "devfs://", "devfile://"), ("filesystem", "filesystem://localhost//", "file://")],
)
def test_development_keeps_everything_in_absolute_folders(
    tmp_path, dev_broker, broker_url, backend_scheme
):
    env = {"CELERY_ENV": "development", "CELERY_DATA_DIR": str(tmp_path)}
    config = settings.load({**env, "CELERY_DEV_BROKER": dev_broker})
    options = config["broker_transport_options"]
    assert config["broker_url"] == broker_url
    assert options["data_folder_in"] == options["data_folder_out"] == str(tmp_path / "queue")
    assert options["control_folder"] == str(tmp_path / "control")
    assert options["processed_folder"] == str(tmp_path / "processed")
    assert options["quarantine_folder"] == str(tmp_path / "quarantine")
    assert config["result_backend"] == backend_scheme + str(tmp_path / "results")
    for name in settings.DATA_FOLDERS:
        assert (tmp_path / name).is_dir()
        assert (tmp_path / name).stat().st_mode & 0o077 == 0  # owner only


def test_development_uses_the_dev_broker_by_default(tmp_path):
    config = settings.load(
        {"CELERY_ENV": "", "CELERY_DEV_BROKER": "", "CELERY_DATA_DIR": str(tmp_path)}
    )
    assert config["broker_url"] == "devfs://"


def test_an_unknown_dev_broker_names_the_value_and_the_choices(tmp_path):
    with pytest.raises(
        settings.SettingsError, match="CELERY_DEV_BROKER='redis'.*devfs, filesystem"
    ):
        settings.load({"CELERY_ENV": "development", "CELERY_DEV_BROKER": "redis"})


@pytest.mark.parametrize("dev_broker", settings.DEV_BROKERS)
def test_the_development_app_uses_the_files_it_names(tmp_path, dev_broker):
    env = {
        "CELERY_ENV": "development",
        "CELERY_DEV_BROKER": dev_broker,
        "CELERY_DATA_DIR": str(tmp_path),
    }
    app = create_app(settings.load(env))
    assert type(app.backend).__module__.endswith(
        ".devbackend" if dev_broker == "devfs" else ".filesystem"
    )
    assert app.backend.path.decode() == str(tmp_path / "results")
    with app.connection_for_write() as connection:
        expected = ".devbroker" if dev_broker == "devfs" else "kombu.transport.filesystem"
        assert type(connection.transport).__module__.endswith(expected)


def test_production_never_reaches_the_development_transport():
    app = create_app(settings.load(PRODUCTION))
    assert app.conf.broker_transport is None  # an explicit transport would beat the URL
    with app.connection_for_write() as connection:
        assert type(connection.transport).__module__ == "kombu.transport.pyamqp"
    assert type(app.backend).__module__ == "celery.backends.redis"


def test_a_relative_data_dir_starts_at_the_project_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = f".celery-test-{os.getpid()}"
    try:
        config = settings.load({"CELERY_ENV": "development", "CELERY_DATA_DIR": name})
        queue = Path(config["broker_transport_options"]["data_folder_in"])
        assert queue == settings.PROJECT_ROOT / name / "queue"
    finally:
        shutil.rmtree(settings.PROJECT_ROOT / name, ignore_errors=True)


def test_a_data_dir_that_holds_the_project_is_refused():
    with pytest.raises(settings.SettingsError, match="CELERY_DATA_DIR"):
        settings.load({"CELERY_ENV": "development", "CELERY_DATA_DIR": ".."})


def test_production_takes_the_urls_from_the_environment():
    config = settings.load(PRODUCTION)
    assert config["broker_url"] == PRODUCTION["CELERY_BROKER_URL"]
    assert config["result_backend"] == PRODUCTION["CELERY_RESULT_BACKEND"]


@pytest.mark.parametrize("variable", ["CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"])
def test_production_without_a_url_names_the_variable(variable):
    with pytest.raises(settings.SettingsError, match=variable):
        settings.load({**PRODUCTION, variable: ""})


def test_an_unknown_environment_names_the_value_and_the_choices():
    with pytest.raises(settings.SettingsError) as error:
        settings.load({"CELERY_ENV": "staging"})
    message = str(error.value)
    assert "'staging'" in message and "development" in message and "production" in message
    assert "\n" not in message


def test_only_json_is_accepted():
    config = settings.load(PRODUCTION)
    assert config["accept_content"] == ["json"]
    assert config["task_serializer"] == config["result_serializer"] == "json"


def test_the_environment_wins_over_the_dotenv_file(tmp_path):
    dotenv_file = tmp_path / ".env"
    dotenv_file.write_text("CELERY_ENV=production\nCELERY_DATA_DIR=from-dotenv\n")
    env = settings.read_environment({"CELERY_ENV": "development"}, dotenv_file)
    assert env["CELERY_ENV"] == "development"
    assert env["CELERY_DATA_DIR"] == "from-dotenv"


def test_production_urls_in_the_environment_never_reach_development(tmp_path, monkeypatch):
    # Celery itself lets these variables win over the configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", PRODUCTION["CELERY_BROKER_URL"])
    monkeypatch.setenv("CELERY_RESULT_BACKEND", PRODUCTION["CELERY_RESULT_BACKEND"])
    env = {"CELERY_ENV": "development", "CELERY_DATA_DIR": str(tmp_path)}
    app = create_app(settings.load(env))
    assert app.conf.broker_url == "devfs://"
    assert app.conf.result_backend == "devfile://" + str(tmp_path / "results")


@pytest.mark.parametrize(
    "command",
    [
        ["-c", f"import {PACKAGE}"],
        ["-m", "celery", "-A", PACKAGE, "inspect", "ping"],
        ["-m", f"{PACKAGE}.check"],
    ],
)
def test_an_unknown_environment_is_one_line_from_every_entry_point(command):
    done = subprocess.run(
        [sys.executable, *command],
        env={**os.environ, "CELERY_ENV": "staging"},
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "ERROR: CELERY_ENV='staging' is not a known environment; "
        "set CELERY_ENV to one of development, production in .env"
    ]
