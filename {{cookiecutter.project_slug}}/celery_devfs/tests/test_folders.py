"""Which folders may be a data folder, how it is made, cleaned, and kept private."""

import os
from pathlib import Path

import celery_devfs
import pytest
from celery_devfs import folders
from celery_devfs.folders import DATA_FOLDERS, MARKER


@pytest.mark.parametrize(
    ("folder", "why"),
    [("/usr", "is a system folder"), ("/etc", "is a system folder"), ("/", "holds ")]
    + [(folder, "is a system folder") for folder in ("/private/etc", "/System", "/Volumes")]
    + [(folder, "is a system folder") for folder in ("/Applications", "/opt/homebrew")],
)
def test_system_folders_are_refused(folder, why):
    with pytest.raises(celery_devfs.DataFolderError, match=why):
        celery_devfs.celery_settings(folder)


def test_a_system_folder_that_is_a_symlink_is_refused_where_it_leads(tmp_path, monkeypatch):
    """As on macOS, where /etc leads to /private/etc: both are refused."""
    real = tmp_path / "private" / "etc"
    real.mkdir(parents=True)
    (real / "hosts").write_text("")
    (tmp_path / "etc").symlink_to(real)
    monkeypatch.setattr(folders, "SYSTEM_FOLDERS", (tmp_path / "etc",))
    for folder in (tmp_path / "etc", real):
        with pytest.raises(celery_devfs.DataFolderError, match="is a system folder"):
            celery_devfs.celery_settings(folder)


def test_the_home_folder_is_refused_even_when_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(celery_devfs.DataFolderError, match=f"holds {tmp_path}"):
        celery_devfs.celery_settings("~")
    assert list(tmp_path.iterdir()) == []


def test_protected_folders_can_neither_be_held_nor_hold_it(tmp_path):
    code = tmp_path / "project" / "package"
    code.mkdir(parents=True)
    for folder, why in [(tmp_path / "project", "holds"), (code / "data", "is inside")]:
        with pytest.raises(celery_devfs.DataFolderError, match=why):
            celery_devfs.celery_settings(folder, protect=[code])
    assert not (code / "data").exists()


def test_a_folder_holding_other_files_is_refused_and_left_alone(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(celery_devfs.DataFolderError, match="did not create"):
        celery_devfs.celery_settings(tmp_path)
    with pytest.raises(celery_devfs.DataFolderError, match="did not create"):
        celery_devfs.remove_data_folders(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


def test_a_file_or_a_folder_that_cannot_be_made_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(celery_devfs.DataFolderError, match="is a file, not a folder"):
        celery_devfs.celery_settings(tmp_path / "file")
    with pytest.raises(celery_devfs.DataFolderError, match="cannot be used"):
        celery_devfs.celery_settings(tmp_path / "file" / "folder")  # on every OS


def test_clean_deletes_only_what_celery_devfs_and_the_project_made(tmp_path):
    data = tmp_path / "data"
    celery_devfs.celery_settings(data)
    (data / "results" / "celery-task-meta-x").write_text("{}")
    (data / "beat.pid").write_text("1")
    assert celery_devfs.remove_data_folders(data) == []
    assert not data.exists()
    celery_devfs.celery_settings(data)
    (data / "notes.txt").write_text("mine")
    assert celery_devfs.remove_data_folders(data) == ["notes.txt"]
    assert sorted(p.name for p in data.iterdir()) == [MARKER, "notes.txt"]
    celery_devfs.celery_settings(data)  # still ours


def test_a_data_folder_from_before_the_marker_is_adopted(tmp_path):
    for name in DATA_FOLDERS:
        (tmp_path / "data" / name).mkdir(parents=True)
    celery_devfs.celery_settings(tmp_path / "data")
    assert (tmp_path / "data" / MARKER).is_file()


def test_every_folder_and_file_written_is_owner_only(tmp_path):
    from .app import make_app

    old = os.umask(0o022)  # the usual umask, which gives 755 and 644
    try:
        data = tmp_path / "new" / "data"
        app = make_app({"DEVFS_TEST_SETUP": "devfs", "DEVFS_TEST_DATA": str(data)})
        with app.connection_for_write() as connection:
            app.send_task("x", connection=connection)
        app.backend.store_result("a-task", 3, "SUCCESS")
        app.backend.incr(b"a-counter")
    finally:
        os.umask(old)
    made = [data, *data.rglob("*")]
    assert len(made) > len(DATA_FOLDERS) + 3
    for path in made:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is {oct(path.stat().st_mode)}"


def test_the_settings_point_at_the_folders(tmp_path):
    config = celery_devfs.celery_settings(tmp_path / "my data")
    options = config["broker_transport_options"]
    assert config["broker_url"] == "devfs://"
    queue = str(tmp_path / "my data" / "queue")
    assert options["data_folder_in"] == options["data_folder_out"] == queue
    assert config["result_backend"] == "devfs://" + (tmp_path / "my data/results").as_posix()
    assert Path(options["quarantine_folder"]).is_dir()


def test_a_connection_on_a_folder_that_cannot_be_one_fails_at_once(tmp_path):
    from kombu import Connection

    (tmp_path / "file").write_text("")
    folder = str(tmp_path / "file" / "queue")
    celery_devfs.register()
    options = {"data_folder_in": folder, "data_folder_out": folder, "control_folder": folder}
    connection = Connection("devfs://", transport_options=options)
    with pytest.raises(celery_devfs.DataFolderError, match="cannot be used \\(Not a directory\\)"):
        connection.ensure_connection(max_retries=1)


def test_the_backend_without_a_path_is_improperly_configured():
    from celery import Celery
    from celery.exceptions import ImproperlyConfigured
    from celery_devfs.backend import Backend

    for url in ("devfs://", None):
        with pytest.raises(ImproperlyConfigured, match="configure a path for the devfs"):
            Backend(app=Celery(), url=url)


def test_removing_is_refused_while_a_process_consumes_from_the_folder(tmp_path):
    """A worker whose folders went would run tasks on, deaf to remote control."""
    from kombu import Connection, Queue

    data = tmp_path / "data"
    options = celery_devfs.celery_settings(data)["broker_transport_options"]
    with Connection("devfs://", transport_options=options) as connection:
        with connection.Consumer([Queue("q")], callbacks=[print]):
            with pytest.raises(celery_devfs.DataFolderError, match=f"process {os.getpid()} "):
                celery_devfs.remove_data_folders(data)
            assert sorted(p.name for p in data.iterdir() if p.is_dir()) == sorted(DATA_FOLDERS)
    assert celery_devfs.remove_data_folders(data) == []  # its consumer gone
    assert not data.exists()
