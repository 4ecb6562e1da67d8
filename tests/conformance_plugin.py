"""pytest plugin that tests/conformance.py loads into Celery's integration suite:
registers devfs:// and points the suite at celery_devfs (CONFORMANCE_DEVFS_DATA
set; CONFORMANCE_DEVFS_BACKEND: another result backend), through the
integration-tests-config.json that Celery's conftest merges."""

import json
import os
from pathlib import Path

import celery_devfs


def pytest_configure(config):
    celery_devfs.register()
    data = os.environ.get("CONFORMANCE_DEVFS_DATA")
    if data:
        settings = celery_devfs.celery_settings(data)
        if backend := os.environ.get("CONFORMANCE_DEVFS_BACKEND"):  # devfs+redis
            settings["result_backend"] = backend
        Path(config.rootpath, "integration-tests-config.json").write_text(json.dumps(settings))
