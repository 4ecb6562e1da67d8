"""Settings of both environments, and the mistakes they must catch."""

import errno
import os
import subprocess
import sys

import celery_devfs
import pytest

from {{ cookiecutter.project_slug }} import settings, tasks
from {{ cookiecutter.project_slug }}.celery import create_app

PACKAGE = settings.__package__
PRODUCTION = {
    "CELERY_ENV": "production",
    "CELERY_BROKER_URL": "amqp://user:secret@rabbit:5672//",
    "CELERY_RESULT_BACKEND": "redis://cache:6379/1",
}


def test_development_keeps_everything_in_the_data_folder(tmp_path):
    config = settings.load({"CELERY_ENV": "development", "CELERY_DATA_DIR": str(tmp_path)})
    assert config["broker_url"] == "devfs://"
    assert config["broker_transport_options"]["data_folder_in"] == str(tmp_path / "queue")
    assert config["result_backend"] == "devfs://" + (tmp_path / "results").as_posix()
    app = create_app(config)
    assert type(app.backend).__module__ == "celery_devfs.backend"
    with app.connection_for_write() as connection:
        assert type(connection.transport).__module__ == "celery_devfs.transport"


def test_production_never_reaches_the_development_transport():
    app = create_app(settings.load(PRODUCTION))
    assert app.conf.broker_transport is None  # an explicit transport would beat the URL
    with app.connection_for_write() as connection:
        assert type(connection.transport).__module__ == "kombu.transport.pyamqp"
    assert type(app.backend).__module__ == "celery.backends.redis"


def test_the_runaway_limits_apply_to_tasks_that_set_no_limit_of_their_own():
    app = create_app(settings.load(PRODUCTION))

    @app.task(time_limit=2)  # a soft limit of 300 s would fail it at .delay()
    def hard_only():
        pass

    tsum = app.tasks[tasks.tsum.name]
    assert (tsum.soft_time_limit, tsum.time_limit) == (300, 360)
    assert (hard_only.soft_time_limit, hard_only.time_limit) == (None, 2)


def test_a_celery_that_celery_devfs_was_not_tested_with_stops_development_only(monkeypatch):
    monkeypatch.setattr(celery_devfs, "version", lambda name: "9.0.0")  # as if installed
    with pytest.raises(settings.SettingsError) as error:
        settings.load({"CELERY_ENV": "development"})
    assert str(error.value.code).startswith("ERROR: celery_devfs ")
    assert "celery 9.0.0, kombu 9.0.0 is installed, a major version" in str(error.value.code)
    assert settings.load(PRODUCTION)["broker_url"] == PRODUCTION["CELERY_BROKER_URL"]


def test_development_on_windows_itself_is_one_line_naming_wsl(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(settings.SettingsError) as error:
        settings.load({"CELERY_ENV": "development"})
    assert error.value.code == (
        "ERROR: the development broker (celery_devfs) runs on Linux, macOS, the BSDs and "
        "WSL 2, not on Windows itself: open the project in WSL 2, or set "
        "CELERY_ENV=production in .env"
    )
    assert settings.load(PRODUCTION)["broker_url"] == PRODUCTION["CELERY_BROKER_URL"]


def test_a_relative_data_dir_starts_at_the_project_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert settings.data_dir({"CELERY_DATA_DIR": "data"}) == settings.PROJECT_ROOT / "data"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (".", "holds"),
        ("..", "holds"),
        (PACKAGE, "holds"),
        (f"{PACKAGE}/data", "is inside"),
        ("tests", "already holds files that celery_devfs did not create"),
        ("/usr", "is a system folder"),
    ],
)
def test_a_data_dir_that_is_not_ours_is_refused_before_anything_is_made(value, why):
    before = sorted(p.name for p in settings.PROJECT_ROOT.iterdir())
    with pytest.raises(settings.SettingsError) as error:
        settings.load({"CELERY_ENV": "development", "CELERY_DATA_DIR": value})
    assert why in str(error.value) and f"CELERY_DATA_DIR={value!r}" in str(error.value)
    assert sorted(p.name for p in settings.PROJECT_ROOT.iterdir()) == before
    assert not (settings.PROJECT_ROOT / PACKAGE / "data").exists()


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("CELERY_BROKER_URL", "amqpx://localhost"),
        ("CELERY_BROKER_URL", "localhost:5672"),
        ("CELERY_RESULT_BACKEND", "rediss2://me:s3cret@cache:6379/0"),
    ],
)
def test_a_url_with_an_unknown_scheme_is_one_error(variable, url):
    with pytest.raises(settings.SettingsError) as error:
        settings.load({**PRODUCTION, variable: url})
    message = str(error.value)
    assert message.startswith(f"ERROR: {variable}=") and "unknown scheme" in message
    assert "s3cret" not in message


def test_tls_urls_are_taken_and_a_rediss_one_must_say_how_to_check_certificates():
    """amqps:// and rediss:// work; Celery stops a rediss:// URL without ssl_cert_reqs
    with a traceback (at the first result), the settings with one line."""
    tls = {"CELERY_BROKER_URL": "amqps://me:s3cret@rabbit:5671//"}
    tls["CELERY_RESULT_BACKEND"] = "rediss://:s3cret@cache:6380/0?ssl_cert_reqs=required"
    assert settings.load({**PRODUCTION, **tls})["result_backend"].startswith("rediss://")
    bare = "rediss://:s3cret@cache:6380/0"
    with pytest.raises(settings.SettingsError) as error:
        settings.load({**PRODUCTION, **tls, "CELERY_RESULT_BACKEND": bare})
    assert str(error.value) == (
        "ERROR: CELERY_RESULT_BACKEND='rediss://:**@cache:6380/0' needs to say how to check "
        "Redis's certificate; end it with ?ssl_cert_reqs=required (or optional, or none)"
    )


def test_a_dotenv_line_that_does_not_parse_is_one_error_naming_file_and_line(tmp_path, capsys):
    dotenv_file = tmp_path / ".env"
    dotenv_file.write_text("CELERY_ENV=development\nthis is not a setting\n")
    with pytest.raises(settings.SettingsError) as error:
        settings.read_environment({}, dotenv_file)
    assert str(error.value) == (
        f"ERROR: {dotenv_file} line 2 is not NAME=value; "
        "fix it, or start it with # to make it a comment"
    )
    assert capsys.readouterr().err == ""  # not python-dotenv's own warnings


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
    assert app.conf.result_backend == "devfs://" + (tmp_path / "results").as_posix()


BAD_SETTINGS = {
    "unknown environment": (
        {"CELERY_ENV": "staging"},
        "ERROR: CELERY_ENV='staging' is not a known environment; "
        "set CELERY_ENV to one of development, production in .env",
    ),
    "data dir is a file": (
        {"CELERY_ENV": "development", "CELERY_DATA_DIR": "pyproject.toml"},
        f"ERROR: CELERY_DATA_DIR='pyproject.toml' ({settings.PROJECT_ROOT / 'pyproject.toml'}) "
        "is a file, not a folder; point it to a new folder of its own, "
        "e.g. CELERY_DATA_DIR=.celery",
    ),
    "data dir cannot be made": (  # a file in its path: the same error on every OS
        {"CELERY_ENV": "development", "CELERY_DATA_DIR": "pyproject.toml/data"},
        "ERROR: CELERY_DATA_DIR='pyproject.toml/data' "
        f"({settings.PROJECT_ROOT / 'pyproject.toml' / 'data'}) cannot be used "
        f"({os.strerror(errno.ENOTDIR)}); point it to a new folder of its own, "
        "e.g. CELERY_DATA_DIR=.celery",
    ),
    "broker URL scheme": (
        {**PRODUCTION, "CELERY_BROKER_URL": "amqpx://localhost"},
        "ERROR: CELERY_BROKER_URL='amqpx://localhost' has an unknown scheme 'amqpx://'; "
        "use amqp://user:password@host:5672// for RabbitMQ or redis://host:6379/0 for Redis "
        "(see .env.example)",
    ),
}


@pytest.mark.parametrize("bad", list(BAD_SETTINGS))
@pytest.mark.parametrize(
    "command",
    [
        ["-c", f"import {PACKAGE}"],
        ["-m", "celery", "-A", PACKAGE, "inspect", "ping"],
        ["-m", "celery", "-A", PACKAGE, "worker"],
        ["-m", f"{PACKAGE}.cli", "check"],
        ["-m", f"{PACKAGE}.cli", "demo"],
    ],
    ids=["import", "inspect", "worker", "check", "demo"],
)
def test_a_bad_setting_is_one_line_from_every_entry_point(command, bad):
    variables, line = BAD_SETTINGS[bad]
    done = subprocess.run(
        [sys.executable, *command],
        env={**os.environ, **variables},
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [line]
