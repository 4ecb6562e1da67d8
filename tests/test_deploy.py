"""The deployment a rendered project ships (Dockerfile, docker-compose.yml's "app"
profile, DEPLOY.md): linted, and what its services run, run here as the containers
would, against the RabbitMQ and Redis of .ci/services. No container engine is here:
the generated CI builds the image and runs make demo against the stack."""

import os
import re
import shlex
import socket
import subprocess
import sys
import time

import pytest
import yaml

from conftest import BIN, clean_env, free_port, run

PACKAGE = "my_celery_project"  # the default slug: the `baked` project's


def services(project):
    return yaml.safe_load((project / "docker-compose.yml").read_text())["services"]


def image_command(project):
    """The Dockerfile's CMD: what the worker service runs."""
    (cmd,) = re.findall(r"^CMD (\[.*\])$", (project / "Dockerfile").read_text(), re.M)
    return yaml.safe_load(cmd)


def test_the_deployment_files_pass_their_linters(baked):
    """The compose file against the Compose Specification's schema (check-jsonschema
    carries it), the Dockerfile through hadolint."""
    compose = ["--builtin-schema", "vendor.compose-spec", "docker-compose.yml"]
    run([BIN / "check-jsonschema", *compose], baked)
    run([BIN / "hadolint", "Dockerfile"], baked)


def test_the_deployment_stops_tasks_gracefully_and_never_runs_as_root(baked):
    """A worker's stop grace period is longer than a task's hard time limit, so that
    `docker compose stop` lets running tasks end; the image's user is not root; one
    beat; the worker and Flower have health checks."""
    limit = run(
        [sys.executable, "-c", f"from {PACKAGE} import app; "
         "print(app.conf.task_annotations[0].limits['time_limit'])"], baked,
    ).stdout  # fmt: skip
    found = services(baked)
    grace = re.fullmatch(r"(\d+)s", found["worker"]["stop_grace_period"])
    assert int(grace[1]) > int(limit) == 360
    (user,) = re.findall(r"^USER (\S+)$", (baked / "Dockerfile").read_text(), re.M)
    assert user not in ("root", "0")
    assert "healthcheck" in found["worker"] and "healthcheck" in found["flower"]
    assert "scale" not in found["beat"] and "deploy" not in found["beat"]


def as_here(command, port):
    """A container's command as a process here: its Python, data folder and Flower port."""
    if isinstance(command, str):
        command = shlex.split(command)
    program = {"celery": [sys.executable, "-m", "celery"], "python": [sys.executable]}
    line = [*program.get(command[0], [command[0]]), *command[1:]]
    return [word.replace("5555", str(port)) for word in line]


def healthy(check, project, env, port, seconds=90):
    """Run a compose health check until it passes ("") or `seconds` are over (what its
    last try printed)."""
    kind, *command = check["test"]
    if kind == "CMD-SHELL":  # compose's $$ is the shell's $; celery is the virtualenv's
        command = ["sh", "-c", command[0].replace("$$", "$")]
        env = {**env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = subprocess.run(
            as_here(command, port) if kind == "CMD" else command, cwd=project,  # WORKDIR
            env=clean_env(**env), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if done.returncode == 0:
            return ""
        time.sleep(1)
    return f"{command} exited {done.returncode}: {done.stdout}{done.stderr}"


@pytest.mark.slow
def test_the_app_services_run_and_pass_their_health_checks_against_real_servers(baked, tmp_path):
    """Worker (the image's CMD), beat and Flower (their compose commands), with the
    environment compose gives them (the servers' names as 127.0.0.1): both health
    checks pass, make demo's chord runs on that worker, beat starts, and at a stop
    the worker shuts down warm."""
    found = services(baked)
    port = free_port()
    env = {
        **found["worker"]["environment"],
        "CELERY_ENV": "production",  # the Dockerfile's ENV
        "CELERY_QUEUE": f"deploy-{os.getpid()}",
        "FLOWER_BASIC_AUTH": "deploy:a-password-of-our-own",
        "FLOWER_PORT": str(port),  # 5555 in the container
        "HOSTNAME": socket.gethostname(),  # a container's: the worker's name
        "CELERY_DATA_DIR": str(tmp_path / "data"),  # nothing written in the shared `baked`
    }
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env[name] = (
            env[name].replace("@rabbitmq:", "@127.0.0.1:").replace("//redis:", "//127.0.0.1:")
        )
    assert env["CELERY_BROKER_URL"] == "amqp://guest:guest@127.0.0.1:5672//"
    assert env["CELERY_RESULT_BACKEND"] == "redis://127.0.0.1:6379/0"
    beat = [w.replace("/data", str(tmp_path)) for w in found["beat"]["command"]]
    commands = {"worker": image_command(baked), "beat": beat, "flower": found["flower"]["command"]}
    processes, logs = {}, {}
    try:
        for name, command in commands.items():
            logs[name] = tmp_path / f"{name}.log"
            with open(logs[name], "w") as out:
                processes[name] = subprocess.Popen(
                    as_here(command, port), cwd=baked, env=clean_env(**env),
                    stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
        for name in ("worker", "flower"):
            failed = healthy(found[name]["healthcheck"], baked, env, port)
            assert not failed, failed + logs[name].read_text()[-3000:]
        demo = run([sys.executable, "-m", f"{PACKAGE}.cli", "demo"], baked, timeout=120, **env)
        assert demo.stdout.split() == ["10"]
        assert processes["beat"].poll() is None, logs["beat"].read_text()[-3000:]
        assert "beat: Starting" in logs["beat"].read_text()
    finally:
        for process in processes.values():
            process.terminate()
        codes = {name: process.wait(timeout=60) for name, process in processes.items()}
    assert codes["worker"] == 0, logs["worker"].read_text()[-3000:]
    assert "Warm shutdown" in logs["worker"].read_text()
