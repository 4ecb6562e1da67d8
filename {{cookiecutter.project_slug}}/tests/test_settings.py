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


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (".", "holds the project itself"),
        (PACKAGE, "inside the package's source code"),
        (f"{PACKAGE}/data", "inside the package's source code"),
        ("tests", "already holds files that this project did not create"),
        ("/usr", "is a system folder"),
        ("/etc", "is a system folder"),
        # Refused as the home folder, or as holding the project, wherever it is:
        ("~", ""),
        ("/", ""),
        ("/tmp", ""),
    ],
)
def test_a_data_dir_that_is_not_ours_is_refused_before_anything_is_made(value, why):
    before = sorted(p.name for p in settings.PROJECT_ROOT.iterdir())
    with pytest.raises(settings.SettingsError) as error:
        settings.load({"CELERY_ENV": "development", "CELERY_DATA_DIR": value})
    assert why in str(error.value) and f"CELERY_DATA_DIR={value!r}" in str(error.value)
    assert sorted(p.name for p in settings.PROJECT_ROOT.iterdir()) == before
    assert not (settings.PROJECT_ROOT / PACKAGE / "queue").exists()


def test_the_home_folder_is_refused_even_when_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(settings.SettingsError, match="holds your home folder"):
        settings.load({"CELERY_ENV": "development", "CELERY_DATA_DIR": "~"})
    assert list(tmp_path.iterdir()) == []


def test_a_folder_holding_a_users_file_is_refused_and_the_file_kept(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    env = {"CELERY_ENV": "development", "CELERY_DATA_DIR": str(tmp_path)}
    with pytest.raises(settings.SettingsError, match="did not create"):
        settings.load(env)
    with pytest.raises(settings.SettingsError, match="did not create"):
        settings.remove_data_folders(env)  # make clean
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


def test_a_data_dir_that_is_a_file_or_cannot_be_made_is_one_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(settings.SettingsError, match="is a file, not a folder"):
        settings.load({"CELERY_ENV": "development", "CELERY_DATA_DIR": str(tmp_path / "file")})
    with pytest.raises(settings.SettingsError, match="cannot be used"):
        settings.load({"CELERY_ENV": "development", "CELERY_DATA_DIR": "/proc/no/such/folder"})


def test_clean_deletes_only_what_the_project_made(tmp_path):
    env = {"CELERY_ENV": "development", "CELERY_DATA_DIR": str(tmp_path / "data")}
    app = create_app(settings.load(env))
    app.backend.store_result("a-task", 3, "SUCCESS")
    data = settings.data_dir(env)
    (data / "beat.pid").write_text("1")
    assert settings.remove_data_folders(env) == []
    assert not data.exists()
    settings.load(env)
    (data / "notes.txt").write_text("mine")  # in a folder the project made
    assert settings.remove_data_folders(env) == ["notes.txt"]
    assert sorted(p.name for p in data.iterdir()) == [settings.DATA_MARKER, "notes.txt"]
    settings.load(env)  # still ours: it is used again


def test_a_data_folder_from_before_the_marker_is_adopted(tmp_path):
    for name in settings.DATA_FOLDERS:
        (tmp_path / "data" / name).mkdir(parents=True)
    settings.load({"CELERY_ENV": "development", "CELERY_DATA_DIR": str(tmp_path / "data")})
    assert (tmp_path / "data" / settings.DATA_MARKER).is_file()


def test_every_folder_and_file_the_project_writes_is_owner_only(tmp_path):
    old = os.umask(0o022)  # the usual umask, which gives 755 and 644
    try:
        env = {"CELERY_ENV": "development", "CELERY_DATA_DIR": str(tmp_path / "new" / "data")}
        app = create_app(settings.load(env))
        with app.connection_for_write() as connection:
            app.send_task("x", connection=connection)
        app.backend.store_result("a-task", 3, "SUCCESS")
        app.backend.incr(b"a-counter")
    finally:
        os.umask(old)
    data = settings.data_dir(env)
    made = [data, *data.rglob("*")]
    assert len(made) > len(settings.DATA_FOLDERS) + 3
    for path in made:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is {oct(path.stat().st_mode)}"


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
    assert app.conf.result_backend == "devfile://" + str(tmp_path / "results")


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
    "data dir cannot be made": (
        {"CELERY_ENV": "development", "CELERY_DATA_DIR": "/proc/no/such"},
        "ERROR: CELERY_DATA_DIR='/proc/no/such' cannot be used (No such file or directory); "
        "point it to a folder you can write to, e.g. CELERY_DATA_DIR=.celery",
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
        ["-m", f"{PACKAGE}.check"],
        ["-m", f"{PACKAGE}.demo"],
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
