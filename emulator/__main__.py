"""`python -m emulator`: serve a deployment package on UbiOps' API, locally."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from uvicorn.lifespan.on import LifespanOn

from contract.archive import ArchiveError
from contract.config import ConfigError, DeployerConfig, load_config, secret_values
from contract.environments import SYSTEM_ENVIRONMENTS
from contract.manifest import ManifestError, parse_environment_variables
from contract.names import NAME_RULE, is_name, name_from
from contract.spec import SpecError
from contract.text import is_unicode_text
from emulator import EMULATOR_TOKEN_VARIABLE, console_log, request_command
from emulator.api.auth import token_problem
from emulator.api.origins import parse_allowed_host, parse_allowed_origin
from emulator.app import create_app
from emulator.builds import BUILD_TIMEOUT_SECONDS
from emulator.data_files import UnreadableDataFile
from emulator.data_lock import DataDirInUse
from emulator.environments import OWN_ENVIRONMENT
from emulator.request_runner import RequestRunner
from emulator.runtime.instance import START_TIMEOUT_SECONDS
from emulator.runtime.manager import Runtime
from emulator.runtime.parent import when_parent_ends
from emulator.runtime.python_envs import default_cache
from emulator.serving import PackageError
from emulator.settings import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, INSTANCE_MEMORY_MB, Settings

SHUTDOWN_GRACE_SECONDS = 5
"""On SIGTERM, SIGHUP or Ctrl-C, a request whose answer is still being sent after this long is cut off."""
log = logging.getLogger("emulator")


def parse_args(argv: list[str]) -> Settings:
    config = load_config()
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description=__doc__,
        epilog="python -m emulator request [FILE] sends one request to the project's package (its own --help)")
    parser.add_argument("--package", type=Path, default=config.package_path, help="package folder or .zip (default: %(default)s)")
    parser.add_argument("--host", default=None, help=f"address to bind (default: {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=None, help=f"port to bind (default: {DEFAULT_PORT})")
    parser.add_argument("--fd", type=int, default=None, metavar="N",
                        help="serve the listening TCP socket open as file descriptor N, instead of binding one (what "
                             "test fixtures and `deployer check` start it with: bound before the emulator starts, its "
                             "port cannot be taken meanwhile); --host and --port then do not apply")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="also answer requests whose Host is NAME (repeatable; the listen address, localhost and "
                             "loopback addresses always are)")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="let web pages of ORIGIN, e.g. http://localhost:3000, call the API, with CORS (repeatable; "
                             "the emulator's own pages always may)")
    parser.add_argument("--instances", type=int, default=1, help="worker processes sharing the request queue (default: 1)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=value",
                        help="environment variable for the deployment (repeatable); NAME alone: its value here")
    parser.add_argument("--token", default=None, help=f"require this API token (default: ${EMULATOR_TOKEN_VARIABLE}; none: no auth)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="where files, request history and deployments are kept (default: %(default)s)")
    parser.add_argument("--project", default=config.project, help="project name (default: [tool.deployer] project, %(default)s)")
    parser.add_argument("--deployment", default=None, help="deployment name (default: [tool.deployer] deployment for its "
                        "package, otherwise the package's folder or zip name)")
    parser.add_argument("--version", default=config.emulator_version, help="version name (default: %(default)s)")
    parser.add_argument("--environment", choices=SYSTEM_ENVIRONMENTS, default=None, metavar="NAME",
                        help="the version's base environment, whose Python runs it, e.g. python3-12 (default: [tool.deployer] "
                             f"environment for its package, otherwise {OWN_ENVIRONMENT}, the emulator's own Python version)")
    parser.add_argument("--own-python", action="store_true",
                        help="run packages in the emulator's own Python, as installed by hand, instead of building each "
                             "version's environment from its requirements.txt")
    parser.add_argument("--environments-dir", type=Path, default=None,
                        help=f"where built environments are cached, shared by emulators (default: {default_cache()})")
    parser.add_argument("--instance-memory-mb", type=int, default=INSTANCE_MEMORY_MB,
                        help="stop and replace an instance whose memory passes this, like a UbiOps instance type "
                             "(default: %(default)s; 0: no limit)")
    parser.add_argument("--start-timeout", type=float, default=START_TIMEOUT_SECONDS, metavar="SECONDS",
                        help="fail an instance's start when the import of its deployment file and its "
                             "Deployment.__init__ take longer, so requests waiting for it are answered (default: "
                             f"%(default)g; a revision's instances must all start within {BUILD_TIMEOUT_SECONDS} s)")
    parser.add_argument("--max-upload-mb", type=int, default=100, help="largest request body accepted, in MB (default: %(default)s)")
    parser.add_argument("--reload", action="store_true", help="restart the instances when a file of the package folder changes")
    parser.add_argument("--max-versions", type=int, default=None,
                        help="refuse creating versions beyond this many per deployment, like a UbiOps plan (default: no cap)")
    parser.add_argument("--retention-sweep-seconds", type=float, default=60, metavar="SECONDS",
                        help="how often requests past their version's request_retention_time are deleted, with their "
                             "files (default: %(default)s)")
    parser.add_argument("--log-format", choices=console_log.LOG_FORMATS, default=console_log.LOG_FORMATS[0],
                        help="text lines, or one JSON object per line for log shippers (default: %(default)s)")
    parser.add_argument("--access-log", action="store_true", help="also log a line for every HTTP call (uvicorn's access log)")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop, as on SIGTERM, once the process that started this one ends (what test fixtures "
                             "and `deployer check` start it with, so no emulator outlives a killed test run)")
    args = parser.parse_args(argv)
    if args.host is not None and not args.host.strip():  # uvicorn would bind every interface, as 0.0.0.0 and ::
        parser.error("--host is empty: give the address to listen on, e.g. 127.0.0.1 (0.0.0.0: every interface)")
    if args.fd is not None:
        if args.host is not None or args.port is not None:
            parser.error("--fd serves a socket already bound: leave out --host and --port")
        address = listening_address(args.fd)
        if address is None:
            parser.error(f"--fd {args.fd} is not an open TCP socket listening for connections")
        args.host, args.port = address
    if args.instances < 1:
        parser.error("--instances must be at least 1")
    if args.instance_memory_mb < 0:
        parser.error("--instance-memory-mb must be 0 (no limit) or more")
    if not 0 < args.start_timeout < math.inf:
        parser.error("--start-timeout must be a number of seconds more than 0")
    if args.max_upload_mb < 1:
        parser.error("--max-upload-mb must be at least 1")
    if args.reload and not args.package.is_dir():
        parser.error("--reload watches a package folder; --package is not one")
    if args.max_versions is not None and args.max_versions < 1:
        parser.error("--max-versions must be at least 1")
    if not args.retention_sweep_seconds > 0:
        parser.error("--retention-sweep-seconds must be more than 0")
    for option, path in (("--package", args.package), ("--data-dir", args.data_dir), ("--environments-dir", args.environments_dir)):
        if path is not None and not is_unicode_text(str(path.resolve())):  # its paths go to the instances, and into messages, as UTF-8
            parser.error(f"{option} {str(path)!r} is a path Python cannot read as UTF-8 text: rename it")
    if args.package.is_dir():  # what the folder holds is served, watched by --reload and zipped by the deployer
        package = args.package.resolve()
        for option, path in (("--data-dir", args.data_dir), ("--environments-dir", args.environments_dir or default_cache())):
            if path.resolve().is_relative_to(package):
                parser.error(f"{option} {path.resolve()} is inside the package folder {package}: its files would be served, "
                             f"watched by --reload and zipped with the package; give {option} a folder outside it, or run from "
                             "the project's root")
    for option, name in (("--project", args.project), ("--deployment", args.deployment), ("--version", args.version)):
        if name is not None and not is_name(name):  # as the API's names: they go into its paths, metrics and logs
            parser.error(f"{option} {name!r} is not a UbiOps name: {NAME_RULE}")
    passed_on = [name for name in args.env if name and "=" not in name]  # `--env NAME`: this shell's value
    for name in passed_on:
        if name not in os.environ:
            parser.error(f"--env {name}: {name} is not set here, so there is no value to pass on")
    try:
        environment = parse_environment_variables([f"{d}={os.environ[d]}" if d in passed_on else d for d in args.env])
    except ManifestError as exc:
        parser.error(f"--env: {exc}")
    # an empty EMULATOR_TOKEN is unset (docker-compose passes it so); an empty --token is a mistake
    given, token = (("--token", args.token) if args.token is not None
                    else (EMULATOR_TOKEN_VARIABLE, os.environ.get(EMULATOR_TOKEN_VARIABLE) or None))
    if token is not None and (problem := token_problem(token)):
        parser.error(f"{given} {problem}")
    own = own_package(args.package, config)
    configured = configured_environment(config) if own else {}
    try:
        allowed_hosts = tuple(parse_allowed_host(value) for value in args.allow_host)
        allowed_origins = tuple(parse_allowed_origin(value) for value in args.allow_origin)
    except ValueError as exc:
        parser.error(str(exc))
    return Settings(
        package=args.package,
        project=args.project,
        deployment=args.deployment or (config.deployment if own else name_from(_stem(args.package))),
        version=args.version,
        # the configured environment for the configured package (what `push` gives it on UbiOps); for
        # any other, the emulator's own Python version
        base_environment=args.environment or (config.environment if own else OWN_ENVIRONMENT),
        own_python=args.own_python,
        environments_dir=args.environments_dir,
        host=args.host or DEFAULT_HOST,
        port=DEFAULT_PORT if args.port is None else args.port,
        fd=args.fd,
        instances=args.instances,
        environment={**configured, **environment},
        secret_names=frozenset(name for name in config.secrets if name in configured),
        warnings=(*(f"{name}, named in [tool.deployer] secrets, is not set in this shell, so the emulator does not "
                    "pass it on: the deployment sees it only if it is set through the API (`ubiops env create "
                    f"{name} --secret …`, at project, deployment or version level)"
                    for name in config.secrets if own and name not in configured),
                  *(["--token is on the command line, where anyone on this machine can read it (ps); "
                     f"set {EMULATOR_TOKEN_VARIABLE} instead"] if args.token is not None else [])),
        token=token,
        data_dir=args.data_dir,
        reload=args.reload,
        max_upload_mb=args.max_upload_mb,
        instance_memory_mb=args.instance_memory_mb or None,
        start_timeout_seconds=args.start_timeout,
        max_versions=args.max_versions,
        allowed_hosts=allowed_hosts,
        allowed_origins=allowed_origins,
        retention_sweep_seconds=args.retention_sweep_seconds,
        log_format=args.log_format,
        access_log=args.access_log,
        exit_with_parent=args.exit_with_parent,
    )


def listening_address(fd: int) -> tuple[str, int] | None:
    """The address (host, port) of the listening TCP socket open as file descriptor `fd`; None when it is none. One
    not listening was served all the same: unbound, on every interface at a port the log gave as 0; connected, on
    no port at all, its caller waiting for ever."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:  # a copy: closing it leaves `fd` open
            if (sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM
                    and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)):
                host, port = sock.getsockname()[:2]
                return host, port
    except OSError:
        pass
    return None


def own_package(package: Path, config: DeployerConfig) -> bool:
    """Whether `package` is the one `[tool.deployer]` configures: served under its names, environment and
    variables; any other under a name made from its folder (or zip) name, never another one's."""
    return package.resolve() == config.package_path.resolve()


def _stem(package: Path) -> str:
    return package.stem if package.is_file() else package.resolve().name


def configured_environment(config: DeployerConfig) -> dict[str, str]:
    """`[tool.deployer]`'s variables by name, as `deployer check` and `push` set them: the plain ones,
    and the secrets this shell holds (`contract.config.secret_values`: ConfigError for a value no
    environment can hold, so the emulator stops at start, as the deployer does). Their instances see
    nothing else of the shell (`emulator.runtime.instance.machine_environment`)."""
    return {**config.environment_variables, **secret_values(config)}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["request"]:
        request_command.main(argv[1:])
        return
    try:
        settings = parse_args(argv)
        console_log.configure(settings.log_format, settings.token)
        for warning in settings.warnings:
            log.warning("%s", warning)
        app = create_app(settings)
    except (ConfigError, PackageError, ArchiveError, SpecError, ManifestError, DataDirInUse, UnreadableDataFile) as exc:
        sys.exit(f"emulator: error: {exc}")
    loopback = settings.host in ("127.0.0.1", "localhost", "::1")
    if not settings.token and loopback:  # a package uploaded through the API runs its code as this process
        log.warning("no token: every user of this machine can call the API, and run code as you by uploading a "
                    "package (set %s to require one)", EMULATOR_TOKEN_VARIABLE)
    if not loopback:
        if not settings.token:
            log.warning("listening on %s without a token: anyone who can reach this port can call the API "
                        "(set %s or --token)", settings.host, EMULATOR_TOKEN_VARIABLE)
        log.info("answering requests whose Host is %s, localhost or a loopback address; name others with --allow-host",
                 ", ".join((settings.host, *settings.allowed_hosts)))
    url = f"http://{settings.host}:{settings.port}/v2.1/projects/{settings.project}/deployments/{settings.deployment}"
    default = app.state.services.registry.deployment(settings.project, settings.deployment).default_version
    if default != settings.version:  # the deployment's URL answers with that default, not with this package
        url += f"/versions/{settings.version}"
        log.warning("deployment %s's default version is %s (kept from an earlier run), not the package's %s: requests "
                    "without a version go to %s; make %s the default again with `ubiops deployments update %s "
                    "--default_version %s`", settings.deployment, default, settings.version, default, settings.version,
                    settings.deployment, settings.version)
    log.info("serving %s as project %s, deployment %s, version %s at %s/requests", settings.package, settings.project,
             settings.deployment, settings.version, url)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None,
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
                            access_log=settings.access_log,
                            proxy_headers=False)  # served directly, never behind a proxy that forwards the client's address
    sockets = None
    if settings.fd is not None:
        listener = socket.socket(fileno=settings.fd)
        listener.set_inheritable(False)  # as a socket uvicorn binds: not passed on to the processes this one starts
        sockets = [listener]
    if settings.exit_with_parent:
        when_parent_ends(lambda: os.kill(os.getpid(), signal.SIGTERM))
    EmulatorServer(config, app.state.services.runtime, app.state.services.runner).run(sockets)


class EmulatorServer(uvicorn.Server):
    """uvicorn, answering the requests still queued or running (as failed) as soon as a stop is
    asked: uvicorn waits for every open request before the app's own shutdown would run. Batch
    requests no instance has taken stay `pending`, for the next start (`RequestRunner.stopping`)."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime, runner: RequestRunner) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.runner = runner

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's, ended by Ctrl-C without a traceback: once uvicorn has stopped, it raises the SIGINT it caught
        again, and asyncio turns that into a KeyboardInterrupt, which `uvicorn.run` swallows but Python printed
        here. The emulator then exits by SIGINT, as Python itself exits on an uncaught KeyboardInterrupt, so a
        shell or make sees it was interrupted."""
        try:
            super().run(sockets)
        except KeyboardInterrupt:
            logging.shutdown()  # flushed: the signal ends the process before Python's own clean-up
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.raise_signal(signal.SIGINT)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's, with its "Uvicorn running on" line also for a socket given (`--fd`): uvicorn leaves that
        line to whoever bound it, and people and tests look for it."""
        await super().startup(sockets)
        if sockets is not None and self.started:
            self._log_started_message(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Answer the requests, then uvicorn's shutdown. A second Ctrl-C makes uvicorn's a forced one, which stops
        waiting for open connections and skips the app's own shutdown: the application's lifespan was then
        cancelled as the event loop closed, an ERROR traceback in the log (CancelledError), and its clean-up
        (builds stopped, log lines stored, the data folder's stores closed) never ran. It runs here instead,
        after one plain line."""
        self.runner.stopping()
        await self.runtime.close()
        await super().shutdown(sockets)
        if isinstance(self.lifespan, LifespanOn) and not self.lifespan.shutdown_event.is_set():
            cut = list(self.server_state.tasks)
            log.warning("Interrupted again: stopping now, without waiting for open connections; requests cut off: %d", len(cut))
            with _without_cancellations(logging.getLogger("uvicorn.error")):  # each logged its traceback as an ERROR
                for task in cut:
                    task.cancel()
                await asyncio.gather(*cut, return_exceptions=True)
            await self.lifespan.shutdown()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's (SIGINT, SIGTERM), and SIGHUP handled alike: closing the terminal that runs `make serve`
        ended the emulator at once, without a log line or its clean-up (requests answered, instances
        stopped). Restored before uvicorn's, which then raises each signal caught again, so the emulator
        exits by it, as by SIGTERM. Started with hangups ignored (`nohup make serve &`), it keeps ignoring
        them, as asked: it ended with the terminal it was started from."""
        with super().capture_signals():
            if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
                yield
                return
            previous = signal.signal(signal.SIGHUP, self.handle_exit)
            try:
                yield
            finally:
                signal.signal(signal.SIGHUP, previous)


@contextlib.contextmanager
def _without_cancellations(logger: logging.Logger) -> Iterator[None]:
    """`logger` leaves out the records of a cancellation (a request's task cut off, as asked), meanwhile."""

    def not_cancelled(record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))

    logger.addFilter(not_cancelled)
    try:
        yield
    finally:
        logger.removeFilter(not_cancelled)


if __name__ == "__main__":
    main()
