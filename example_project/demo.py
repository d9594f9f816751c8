"""`make demo`: the example site (example_project/) on DynamoDB Local, with a Celery worker and beat.

Starts DynamoDB Local (in memory), creates the table, the SQLite auth tables and the user demo/demo,
then a Celery worker, celery beat and Django's server, each in a process group of its own, and
prints the URL. Ctrl-C (or SIGTERM) stops them all. The port is 8000, or $DEMO_PORT; the logs and
the SQLite file are in .cache/demo/ (or $REDIMO_DEMO_DIR).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, NoReturn

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
STOP_SECONDS = 10.0


class Stop(Exception):
    """A signal asked the demo to stop."""


def port_is_free(port: int) -> bool:
    """Whether the server could listen on 127.0.0.1:port (TIME_WAIT from an earlier run does not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Processes:
    """The demo's children, each in a process group of its own, which is stopped as a whole."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *argv: str, cwd: Path = HERE) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "ab") as log:
            process = subprocess.Popen(argv, cwd=cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.running[name] = process
        return process

    def run(self, name: str, *argv: str) -> None:
        """Run a set-up step to its end; its output goes to the log, shown if it fails."""
        if self.start(name, *argv).wait() != 0:
            raise SystemExit(f"{name} failed:\n{self.tail(name)}")
        del self.running[name]

    def ready(self, name: str) -> None:
        """Raises until a Celery process has logged that it is ready."""
        if " ready." not in (self.logs / f"{name}.log").read_text(errors="replace"):
            raise LookupError(f"{name} is not ready")

    def tail(self, name: str, lines: int = 25) -> str:
        return "\n".join((self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])

    def exited(self) -> str | None:
        return next((name for name, process in self.running.items() if process.poll() is not None), None)

    def stop(self, names: list[str] | None = None) -> None:
        """SIGTERM to each (a worker then stops its own pool), and SIGKILL to its process group when it
        has exited or after STOP_SECONDS, so that nothing it started is left."""
        chosen = {name: self.running.pop(name) for name in (list(self.running) if names is None else names)
                  if name in self.running}
        for process in chosen.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for process in chosen.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process.pid, signal.SIGKILL)  # the leader's own children (the worker's pool) too
            process.wait()


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        pass


@contextmanager
def dynamodb_local(processes: Processes) -> Iterator[str]:
    """DynamoDB Local in memory on a free port, in its own process group, like redimo.local's (a
    Ctrl-C in the terminal then reaches only this launcher, which stops Java last)."""
    from redimo.gateway import make_client
    from redimo.local import free_port, installed_directory

    try:
        directory = installed_directory()
    except FileNotFoundError as missing:
        raise SystemExit(str(missing)) from None
    port = free_port()
    processes.start("dynamodb", "java", f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}", "-jar",
                    str(directory / "DynamoDBLocal.jar"), "-inMemory", "-disableTelemetry", "-port", str(port),
                    cwd=processes.logs)
    endpoint = f"http://127.0.0.1:{port}"
    client = make_client(endpoint_url=endpoint, max_attempts=1, connect_timeout=1)
    try:
        wait_for(client.list_tables, processes, "dynamodb", "DynamoDB Local")
        yield endpoint
    finally:
        processes.stop(["dynamodb"])


def wait_for(ready: Callable[[], object], processes: Processes, name: str, what: str, seconds: float = 60) -> None:
    """Call ``ready`` until it returns without raising; the process ``name`` must keep running."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            ready()
            return
        except Exception:
            if processes.running[name].poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start; {name}.log ends with:\n{processes.tail(name)}") from None
            time.sleep(0.2)


def _raise_stop(signum: int, _frame: object) -> NoReturn:
    raise Stop(signal.Signals(signum).name)


def main() -> int:
    try:
        port = int(os.environ.get("DEMO_PORT") or 8000)
    except ValueError:
        print(f"DEMO_PORT must be a port number, not {os.environ['DEMO_PORT']!r}", file=sys.stderr)
        return 2
    if not port_is_free(port):
        print(f"Port {port} is already in use on 127.0.0.1. Stop what uses it, or choose another port:\n"
              f"    DEMO_PORT={port + 1} make demo", file=sys.stderr)
        return 2
    env = dict(os.environ)
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1",
                        "AWS_DEFAULT_REGION": "us-east-1",
                        "REDIMO_DYNAMODB_LOCAL_DIR": str(REPO / ".cache" / "dynamodb-local"),
                        "REDIMO_DEMO_DIR": str(REPO / ".cache" / "demo")}.items():
        env[name] = env.get(name) or value
    env.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    os.environ.update(env)  # for this process's DynamoDB Local client
    state = Path(env["REDIMO_DEMO_DIR"])
    state.mkdir(parents=True, exist_ok=True)
    for log in state.glob("*.log"):
        log.unlink()
    processes = Processes(env, state)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    try:
        print("Starting DynamoDB Local ...", flush=True)
        with dynamodb_local(processes) as endpoint:
            try:
                return serve(processes, env, endpoint, port)
            finally:
                stop_all(processes, keep="dynamodb")  # everything that uses DynamoDB Local goes first
    except Stop as stop:
        print(f"\n{stop}: stopping ...", flush=True)
        return 0
    finally:
        stop_all(processes)
        print("Stopped: no demo process is left.", flush=True)


def serve(processes: Processes, env: dict[str, str], endpoint: str, port: int) -> int:
    """Set up, start the worker, beat and the server, and wait; 1 if one of them stops by itself."""
    env.update(REDIMO_DEMO_ENDPOINT=endpoint, PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="redimo_site.settings",
               PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])))
    table = env.setdefault("REDIMO_DEMO_TABLE", "redimo-demo")
    print(f"DynamoDB Local is at {endpoint}. Creating table {table}, the auth tables and user demo ...", flush=True)
    python, url = sys.executable, f"http://127.0.0.1:{port}/"
    processes.run("setup", python, "manage.py", "setup_demo")
    print("Starting the Celery worker, celery beat and Django ...", flush=True)
    processes.start("worker", python, "-m", "celery", "-A", "redimo_site", "worker", "--pool", "prefork",
                    "--concurrency", "4", "--loglevel", "INFO", "--hostname", "demo@%h")
    processes.start("beat", python, "-m", "celery", "-A", "redimo_site", "beat", "--loglevel", "INFO",
                    "--scheduler", "redimo_celery.beat:RedimoScheduler")
    processes.start("web", python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload")
    page = f"{url}accounts/login/"
    wait_for(lambda: urllib.request.urlopen(page, timeout=2).close(), processes, "web", "Django's server")
    wait_for(lambda: processes.ready("worker"), processes, "worker", "The Celery worker")
    print(f"\nThe Redimo demo is running: {url}\n"
          f"Sign in as demo / demo. Logs: {processes.logs}/*.log. Ctrl-C stops everything.\n", flush=True)
    while (gone := processes.exited()) is None:
        time.sleep(0.5)
    print(f"The {gone} process stopped unexpectedly; its log ends with:\n{processes.tail(gone)}", file=sys.stderr)
    return 1


def stop_all(processes: Processes, keep: str | None = None) -> None:
    """Stop the children (but ``keep``), ignoring further signals: a second Ctrl-C must not cut the
    clean-up short."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    processes.stop([name for name in processes.running if name != keep])


if __name__ == "__main__":
    sys.exit(main())
