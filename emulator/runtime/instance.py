"""One instance of a version, seen from the server: a worker process and the socket to it.

Whatever the deployment does (raise, hang, exit, segfault), the server only ever sees a message, a
timeout or an end of file, and can kill and replace the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from contract.names import variables_size
from contract.secrets import masked_forms, secret_forms
from emulator.runtime import protocol
from emulator.runtime.pipes import (
    LOG_LINE_LIMIT,
    DescriptorReader,
    MessageTooLarge,
    PipeReader,
    output_pieces,
    read_message,
    unsplit_cut,
    utf8_cut,
)
from emulator.runtime.processes import ProcessTree, describe_exit, kill_group, kill_instance
from emulator.runtime.python_envs import PythonEnvironment

UNSPLIT_BYTES = LOG_LINE_LIMIT // 4
"""The longest spelling of a variable's value that a long line's cut keeps whole (`Instance._unsplit`)."""
DRAIN_READS = 16
"""Reads (`PipeReader.take_in`) of a file descriptor's pipe at most when a job ends (`Instance._drain_descriptors`):
a pipe holds 64 KiB, one read, unless a process the deployment left running keeps writing."""
READ_LIMIT = 1024 * 1024
"""What the server reads of a worker's channel ahead of its messages' use: asyncio stops reading a socket
whose reader holds twice its limit, so while a streaming request's caller is behind (`run` awaits
`on_update`) the deployment's `streaming_update` waits on the socket; with the message limit as the
reader's, up to 1 GiB was read ahead. Messages past this are read in pieces of it (`read_message`)."""
RELAY_TURN_LINES = 100
"""Lines the relay logs before it lets the event loop serve others. A deployment printing 2 000 000 empty lines
at once (`--instances 2`, `/v2/status` asked every 20 ms meanwhile, ad hoc, the machine busy with a test
run): its median 113 ms (p90 172 ms) without the turns, 32 ms (p90 48 ms) with them."""
RELAY_DRAIN_SECONDS = 2
MEMORY_POLL_SECONDS = 0.1
PSS_POLL_FACTOR = 10
"""After a look that had to read the instance's processes' PSS (`ProcessTree.memory_bytes`: 15-30 ms per GB they
map), the next waits this many times as long, at least: the server's event loop spends at most a tenth of its time
on them."""
EXIT_GRACE_SECONDS = 5
"""How long a worker whose channel closed may take to exit (a large model's clean-up at exit) before it is killed."""
START_TIMEOUT_SECONDS = 600
"""How long `Deployment.__init__` may take by default (`--start-timeout`), as long as a build may take: an
instance that hangs while starting fails its start, so its version turns unavailable and the requests
waiting for it are answered, instead of waiting for ever."""
TEMP_PREFIX = "ubiops-instance-"
"""The name each worker's own temporary folder starts with, in the emulator's."""
PROJECT_ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = f"""
import sys
if sys.path[0] == "":
    del sys.path[0]
sys.path.insert(0, {str(PROJECT_ROOT)!r})
from emulator.runtime import reaper
reaper.start(int(sys.argv[3]), sys.argv[2], (int(sys.argv[1]), int(sys.argv[4])))
from emulator.runtime import worker
del sys.path[0]
for name in [m for m in sys.modules if m.partition(".")[0] in ("emulator", "contract")]:
    del sys.modules[name]
worker.main()
"""
"""How a worker starts in the version's own Python, given its channel's file descriptor, its temporary
folder, the server's process id and its output pipe's file descriptor: the process started forks it and
stays its parent, as the instance's init (`reaper`); the emulator's worker side (standard library only)
is imported from this checkout, then hidden again, so the deployment sees only its own package and
requirements: its own `contract` module, say, is not shadowed by ours."""
log = logging.getLogger("emulator.deployment")
OnUpdate = Callable[[str], Awaitable[None]]
"""Where a job's streamed updates go, one at a time (`Instance.run`)."""


class InstanceStartError(Exception):
    """The deployment could not start: import error, `__init__` raised or hung, or the process died."""


class InstanceLost(Exception):
    """The instance died while handling a request; it must be replaced. `reason` says how, in a word."""

    reason = "crash"


class InstanceUnreached(InstanceLost):
    """The instance had died before the job was sent: the job never ran, and can go to another instance."""


class InstanceTimedOut(InstanceLost):
    """The request outlived its timeout; the instance was killed and must be replaced."""

    reason = "timeout"


class InstanceInterrupted(InstanceLost):
    """The request was cancelled while it ran; the instance was killed to stop its work."""

    reason = "cancelled"


class InstanceOverMemory(InstanceLost):
    """The instance passed its memory limit while handling a request and was killed."""

    reason = "memory"


class InstanceOversized(InstanceLost):
    """The instance sent a message past `protocol.MAX_MESSAGE_BYTES`; it was killed, as its channel is out
    of step (the rest of the message comes next)."""

    reason = "oversized"


MACHINE_VARIABLES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TERM", "LD_LIBRARY_PATH",
                               "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                               "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"})
"""What an instance takes from the emulator's environment, with the locale (`LC_*`) and the proxies
(`*_proxy`, either case): the machine's settings, which a container has its own of, and where Python
may write its bytecode (in a package folder, or not at all); no more."""
PROXIES = frozenset({"http_proxy", "https_proxy", "no_proxy", "all_proxy"})


def machine_environment() -> dict[str, str]:
    """The emulator's environment as an instance sees it: the machine's settings only (MACHINE_VARIABLES).
    The rest of the shell it was started from is the developer's, not UbiOps': a package that read a
    variable exported there passed here and failed on UbiOps (`--env NAME` passes one on, by choice)."""
    return {name: value for name, value in os.environ.items()
            if name in MACHINE_VARIABLES or name.startswith("LC_") or name.lower() in PROXIES}


def environment_too_large(environment: dict[str, str]) -> str:
    """Why a worker with `environment` could not be started (E2BIG): the API refuses its own variables past
    1 MiB together (`contract.names.variables_size_problem`), but `ubiops.yaml`'s, `--env`'s and the
    machine's come on top, so only the start itself can tell."""
    return (f"its environment variables are too large together ({variables_size(environment)} bytes: ubiops.yaml's, "
            "the API's, --env's and the machine's); Linux starts a process only while its environment and command "
            f"line fit in ARG_MAX ({os.sysconf('SC_ARG_MAX')} bytes here)")


@dataclass(frozen=True)
class Launch:
    """Everything needed to start an instance of a version."""

    deployment: str
    version: str
    package_dir: Path
    deployment_file: str
    environment: dict[str, str]
    python_environment: PythonEnvironment
    init_context: dict[str, Any]
    output_file_fields: dict[str, str] = field(default_factory=dict)
    memory_limit_mb: int | None = None
    """Like a UbiOps instance type's memory: a worker growing past it is stopped and replaced."""
    start_timeout_seconds: float = START_TIMEOUT_SECONDS
    project: str = ""
    revision_id: str | None = None
    """The revision whose package the instances run (none for `--package`): its build's lines, the
    installer's and what `__init__` prints, are found by it (`wait_for_revision`'s log stream)."""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """The values of the secrets among `environment`: masked in what the server keeps or shows of the
    instances (`Instance._masked`), as UbiOps says a secret never shows up in responses or logs."""

    @property
    def name(self) -> str:
        return f"{self.deployment}/{self.version}"

    @property
    def log_fields(self) -> dict[str, str | None]:
        """What each log line about this version's instances carries as fields (`emulator.log_capture`
        stores the lines that name a project)."""
        return {"project": self.project, "deployment": self.deployment, "version": self.version,
                "revision_id": self.revision_id}


class Instance:
    def __init__(self, launch: Launch, number: int, python: str) -> None:
        self.launch = launch
        self.number = number
        self.python = python
        """The executable of the version's environment (`emulator.runtime.python_envs`)."""
        self.id = str(uuid.uuid4())
        """The instance's id in the API (`instances_get`, logs' `instance_id`), kept when its process is replaced."""
        self.label = f"{launch.name} instance {number}"
        self.log_fields = {**launch.log_fields, "instance": number, "instance_id": self.id}
        """What each log line about this instance carries as fields (`--log-format json`, the stored logs)."""
        self._process: asyncio.subprocess.Process | None = None
        self._exited: asyncio.Future[None] | None = None
        """Done once the worker's process has exited (`WorkerProtocol`)."""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._relays: list[asyncio.Task[None]] = []
        self._pipes: list[PipeReader] = []
        """The worker's output pipe (`worker.OutputPipe`), which carries what it writes to sys.stdout and sys.stderr,
        then those of its file descriptors 1 and 2 (`_descriptors`)."""
        self._descriptors: list[PipeReader] = []
        self._request_id: str | None = None
        """The request whose job the worker runs (`run`): what its file descriptors 1 and 2 carry meanwhile is its."""
        self._unsplit = [form.encode() for form in secret_forms(launch.environment.values())
                         if len(form.encode()) <= UNSPLIT_BYTES]
        """The spellings of the version's variables' values that a long line's cut never splits (`_relay`):
        made once, not at each start and for each stream."""
        self._secret_forms = secret_forms(launch.secrets)
        """The spellings `_masked` masks, made once: the relay masks every line the deployment prints."""
        self._over_memory = False
        self._interrupted = False
        self._busy = False
        """Whether a job runs."""
        self._memory_check: asyncio.Handle | None = None
        """The next look at the worker's memory, while jobs run."""
        self._group: ProcessTree | None = None
        """The worker's process group, whose memory is held to the limit."""
        self._temp_dir: str | None = None
        """The worker's own temporary folder (its TMPDIR), gone with its process, as a container's /tmp is:
        a deployment's files there (a model's scratch, an image it wrote) never outlive it. Removed by
        `stop`, or by the instance's init when the server was killed outright (`reaper`)."""

    async def start(self) -> protocol.Capabilities:
        """Start the worker and wait until `Deployment.__init__` returns; its capabilities."""
        ours, theirs = socket.socketpair()
        output, their_output = os.pipe()
        (stdout, their_stdout), (stderr, their_stderr) = os.pipe(), os.pipe()
        self._temp_dir = tempfile.mkdtemp(prefix=TEMP_PREFIX)
        loop = asyncio.get_running_loop()
        environment = self._environment(self._temp_dir)
        try:
            transport, worker = await loop.subprocess_exec(
                lambda: WorkerProtocol(loop), self.python, "-c", BOOTSTRAP, str(theirs.fileno()), self._temp_dir, str(os.getpid()),
                str(their_output), pass_fds=(theirs.fileno(), their_output), cwd=self.launch.package_dir, env=environment,
                stdin=subprocess.DEVNULL, stdout=their_stdout, stderr=their_stderr,
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            for fd in (output, stdout, stderr):
                os.close(fd)
            await self.stop()
            if exc.errno == errno.E2BIG:  # a bare "Argument list too long" named neither the variables nor the cause
                raise InstanceStartError(environment_too_large(environment)) from None
            raise
        finally:
            theirs.close()
            for fd in (their_output, their_stdout, their_stderr):
                os.close(fd)
        self._process = asyncio.subprocess.Process(transport, worker, loop)
        self._exited = worker.exited
        pid = self._process.pid
        self._group = ProcessTree(pid)
        self._exited.add_done_callback(lambda _: kill_group(pid))
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours, limit=READ_LIMIT)
        printed = asyncio.StreamReader(limit=LOG_LINE_LIMIT)
        written = DescriptorReader(lambda: self._request_id), DescriptorReader(lambda: self._request_id)
        self._descriptors = [PipeReader(fd, reader) for fd, reader in zip((stdout, stderr), written, strict=True)]
        self._pipes = [PipeReader(output, printed), *self._descriptors]
        self._relays = [asyncio.create_task(self._relay(pieces)) for pieces in (
            output_pieces(printed), written[0].pieces("stdout"), written[1].pieces("stderr"))]
        log.info("[%s] starting (pid %d)", self.label, self._process.pid, extra=self.log_fields)
        self._watch_memory()
        imported = False
        try:
            async with asyncio.timeout(self.launch.start_timeout_seconds):
                with contextlib.suppress(ConnectionError):
                    await self._send(protocol.Setup(
                        package_dir=str(self.launch.package_dir),
                        deployment_file=self.launch.deployment_file,
                        init_context=self.launch.init_context,
                        output_file_fields=self.launch.output_file_fields,
                    ))
                if isinstance(message := await self._receive(), protocol.Imported):
                    imported = True
                    message = await self._receive()
        except TimeoutError:
            await self.stop()
            phase = ("Deployment.__init__ did not return" if imported  # the worker says when the import is done
                     else f"the import of {self.launch.deployment_file} did not end")
            raise InstanceStartError(f"{phase} within {self.launch.start_timeout_seconds:g} seconds; the instance "
                                     "was stopped") from None
        finally:
            self._busy = False
        if isinstance(message, protocol.Ready) and self._peak_past_memory_limit(message.peak_memory_bytes):
            self._stop_over_memory()
        if self._over_memory:
            await self._exit_reason()
            raise InstanceStartError(f"Deployment.__init__ used more than {self.launch.memory_limit_mb} MB of memory; "
                                     "the instance was stopped")
        if message is None:
            raise InstanceStartError(f"the instance {await self._exit_reason()} while starting")
        if isinstance(message, protocol.InitFailed):
            await self.stop()
            raise InstanceStartError(self._masked(message.error))
        if not isinstance(message, protocol.Ready):
            raise TypeError(f"expected Ready, got {type(message).__name__}")
        log.info("[%s] ready", self.label, extra=self.log_fields)
        return message.capabilities

    def _environment(self, temp_dir: str) -> dict[str, str]:
        """The machine's part of the emulator's environment (`machine_environment`), in the version's
        Python, with the worker's own temporary folder, plus the deployment's variables."""
        inherited = machine_environment()
        bin_dir = os.path.dirname(self.python)
        return {**inherited, "PATH": os.pathsep.join(filter(None, [bin_dir, inherited.get("PATH")])),
                "VIRTUAL_ENV": os.path.dirname(bin_dir), "TMPDIR": temp_dir,
                **self.launch.environment, "PYTHONUNBUFFERED": "1"}

    async def run(
        self, job: protocol.Job, timeout: float, on_update: OnUpdate | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> protocol.Reply:
        """Send one job and return the worker's reply; raise InstanceTimedOut or InstanceLost.

        `on_sent` is called once the job has reached the worker; partial output the deployment streams
        before its reply goes to `on_update`, awaited before the next message is read: a caller that
        reads slowly holds the deployment's `streaming_update` back (`READ_LIMIT`), up to the timeout.
        A worker found dead before the job reached it raises InstanceUnreached. What the worker's file descriptors
        1 and 2 carry meanwhile is the job's request's (`_request_id`), what they hold as it ends included.
        """
        self._watch_memory()
        self._request_id = job.context["id"]
        reply: protocol.Message | None = None
        sent = False
        try:
            async with asyncio.timeout(timeout):
                if not self.exited.done():
                    await self._send(job)
                    sent = True
                    if on_sent:
                        on_sent()
                while sent and isinstance(reply := await self._receive(), protocol.StreamUpdate):
                    if on_update:
                        await self._hand_on(on_update(reply.text))
        except TimeoutError:
            log.warning("[%s] request %s timed out; stopping it", self.label, self._request_id,
                        extra={**self.log_fields, "request_id": self._request_id})
            await self.stop()
            raise InstanceTimedOut() from None
        except MessageTooLarge as exc:
            log.warning("[%s] sent a message past %d MiB; stopping it", self.label, protocol.MAX_MESSAGE_BYTES // 2 ** 20,
                        extra=self.log_fields)
            await self.stop()
            what = {"StreamUpdate": "A streaming update of the deployment",
                    "Error": "The deployment's error message"}.get(exc.kind or "", "The deployment's output")
            raise InstanceOversized(
                f"{what} is larger than the emulator's limit of {protocol.MAX_MESSAGE_BYTES // 2 ** 20} MiB (as JSON), "
                "so the request failed; its instance, which was still sending it, is being restarted") from None
        except ConnectionError:
            pass  # from `_send`: the worker had gone
        finally:
            self._busy = False
            self._drain_descriptors()
            self._request_id = None
        if (not self._over_memory and isinstance(reply, protocol.Result | protocol.Error)
                and self._peak_past_memory_limit(reply.peak_memory_bytes)):
            self._stop_over_memory()
        if self._over_memory:
            reply = None  # killed for its memory, even if it answered first: this job passed the limit
        if self._interrupted:
            await self._exit_reason(logging.INFO)
            raise InstanceInterrupted("The request was cancelled; its instance was stopped and is being restarted")
        if reply is None:
            if self._over_memory:
                await self._exit_reason()
                raise InstanceOverMemory(f"The instance used more than {self.launch.memory_limit_mb} MB of memory "
                                         "while handling the request and was stopped; it is being restarted")
            if not sent:
                raise InstanceUnreached(await self.lost_while_idle())
            raise InstanceLost(f"The instance {await self._exit_reason()} while handling the request; it is being restarted")
        if not isinstance(reply, protocol.Result | protocol.Error):
            raise TypeError(f"expected a reply, got {type(reply).__name__}")
        if isinstance(reply, protocol.Error) and self._secret_forms:
            reply = replace(reply, error=self._masked(reply.error))
        return reply

    async def _hand_on(self, update: Awaitable[None]) -> None:
        """Await `update`, a streamed update on its way to the caller, unless the worker exits meanwhile:
        killed as its request was cancelled or passed its memory limit, it is not held to a caller that
        does not read (until the timeout), and `run` reads on to find it gone."""
        handing = asyncio.ensure_future(update)
        try:
            await asyncio.wait((handing, self.exited), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not handing.done():
                handing.cancel()
        if handing.done():
            handing.result()  # what the hand-off raised

    def _masked(self, text: str) -> str:
        """`text`, which the deployment wrote (a line it printed, the error it failed with), with the
        version's secrets masked (`Launch.secrets`): where the deployment's texts enter the server, so
        neither the log (console and store) nor a failure's message (the request's, the revision's, the
        version's while it cannot start) holds them."""
        return masked_forms(text, self._secret_forms) if self._secret_forms else text

    @property
    def exited(self) -> asyncio.Future[None]:
        """Done once the worker's process has exited: the pool watches it between jobs too."""
        assert self._exited is not None, "the instance was started"
        return self._exited

    async def lost_while_idle(self) -> str:
        """What happened to a worker that ended while it ran no job (`exited`), in a sentence; it is stopped."""
        return f"The instance {await self._exit_reason()} while idle; it is being restarted"

    def _watch_memory(self) -> None:
        """Hold the worker to its memory limit while it works (`__init__`, then each job), as a container's
        limit holds it: `_check_memory` looks until `_busy` is cleared."""
        self._over_memory = self._interrupted = False
        self._busy = True
        if self.launch.memory_limit_mb and self._memory_check is None:
            self._memory_check = asyncio.get_running_loop().call_soon(self._check_memory)

    def _check_memory(self) -> None:
        """While the worker works: kill the worker, and what it started, once their memory together passes the
        limit (`ProcessTree.memory_bytes`), otherwise look again in MEMORY_POLL_SECONDS. One timer for
        back-to-back jobs, not a look per job: reading /proc cost ~4 % of the server's time per trivial request
        under load. Jobs shorter than a look are caught by the peak memory each reply carries (`run`)."""
        assert self._group is not None and self.launch.memory_limit_mb is not None, "started with a limit"
        if not self._busy:
            self._memory_check = None
            return
        began = time.perf_counter()
        if not self._past_memory_limit(self._group.memory_bytes(self.launch.memory_limit_mb * 1024 * 1024)):
            wait = max(MEMORY_POLL_SECONDS, PSS_POLL_FACTOR * (time.perf_counter() - began))
            self._memory_check = asyncio.get_running_loop().call_later(wait, self._check_memory)
            return
        self._memory_check = None
        self._stop_over_memory()

    def _past_memory_limit(self, memory_bytes: int) -> bool:
        limit = self.launch.memory_limit_mb
        return bool(limit and memory_bytes > limit * 1024 * 1024)

    def _peak_past_memory_limit(self, reported: int) -> bool:
        """Whether the peak a worker reported (its own, or that of the largest process it started and waited for:
        `worker._peak_memory_bytes`) passed the limit."""
        return self._past_memory_limit(reported)

    def _stop_over_memory(self) -> None:
        """Kill the worker for passing its memory limit: the job it runs, or has just answered, fails."""
        assert self._process is not None, "the instance was started"
        log.warning("[%s] over its memory limit of %d MB; stopping it", self.label, self.launch.memory_limit_mb,
                    extra=self.log_fields)
        self._over_memory = True
        self._kill()

    def interrupt(self) -> None:
        """Stop the job `run` is waiting for (it was cancelled): the worker is killed, so `run` raises
        InstanceInterrupted, whatever it received meanwhile, and the instance is replaced. Said in the log
        first, as an `info` line: its stop alone (`killed by signal SIGKILL`) read as a crash."""
        assert self._process is not None, "the instance was started"
        log.info("[%s] request %s was cancelled; stopping it", self.label, self._request_id,
                 extra={**self.log_fields, "request_id": self._request_id})
        self._interrupted = True
        self._kill()

    def _kill(self) -> None:
        """Kill the instance's processes: the worker and anything it started (`kill_instance`). Not once the
        instance's init has exited: its group was killed then (`start`), and its number may since be another's."""
        assert self._process is not None, "the instance was started"
        if self._process.returncode is None:  # set once the init is reaped, before `exited` is done
            kill_instance(self._process.pid)

    async def stop(self) -> None:
        """Kill the worker and anything it started (it holds no state worth a graceful stop), and remove
        its temporary folder: killed, its own clean-up never runs."""
        if self._process:
            self._kill()
            try:
                async with asyncio.timeout(EXIT_GRACE_SECONDS):
                    await self._process.wait()
            except TimeoutError:  # the instance's init did not end it (stopped by a debugger, say): its group at least
                kill_group(self._process.pid)
                await self._process.wait()
        if self._writer:
            self._writer.close()
        await self._finish_relays()
        for pipe in self._pipes:
            pipe.close()  # held open by a process the deployment left running, its relay cancelled
        if self._temp_dir:
            await asyncio.to_thread(shutil.rmtree, self._temp_dir, True)
            self._temp_dir = None

    async def _finish_relays(self) -> None:
        """Let the log relays drain; a grandchild still holding the pipes must not block us."""
        _, pending = await asyncio.wait(self._relays, timeout=RELAY_DRAIN_SECONDS) if self._relays else ((), ())
        for task in pending:
            task.cancel()

    async def _send(self, message: protocol.Message) -> None:
        assert self._writer is not None, "the instance was started"
        self._writer.write(protocol.encode(message))
        await self._writer.drain()

    async def _receive(self) -> protocol.Message | None:
        """The next message, or None when the worker has gone; MessageTooLarge past `protocol.MAX_MESSAGE_BYTES`."""
        assert self._reader is not None, "the instance was started"
        try:
            line = await read_message(self._reader, protocol.MAX_MESSAGE_BYTES)
        except ConnectionError:
            return None
        return protocol.decode(line) if line else None

    async def _exit_reason(self, level: int = logging.WARNING) -> str:
        """How the worker ended, once its channel closed, logged at `level` (INFO for a kill the caller asked
        for). One that closed the channel but runs on (a deployment closing every file descriptor) is killed
        after EXIT_GRACE_SECONDS: its request fails then, not once the process happens to end."""
        assert self._process is not None, "the instance was started"
        try:  # asyncio.timeout, not wait_for: Python 3.11's hands back the exit code, not a cancellation come meanwhile
            async with asyncio.timeout(EXIT_GRACE_SECONDS):
                reason = describe_exit(await self._process.wait())
        except TimeoutError:
            reason = "closed its channel to the emulator without exiting, and was killed"
        await self.stop()
        log.log(level, "[%s] stopped: %s", self.label, reason, extra=self.log_fields)
        return f"stopped ({reason})"

    def _drain_descriptors(self) -> None:
        """Take in, as the running request's, what the worker's file descriptors 1 and 2 hold as its job ends
        (`run`): a process the request ran wrote there before the reply came, but the pipe may be read after
        it (a moment later, or behind a flood of lines), and its lines were then filed under no request."""
        for pipe in self._descriptors:
            pipe.take_in(DRAIN_READS)

    async def _relay(self, pieces: AsyncIterator[tuple[str, str | None, bytes]]) -> None:
        """Copy the deployment's output, as (`stdout` or `stderr`, request id or None, bytes) pieces, to the log, a
        line of each stream at a time, in the order they end, each with the request of the piece it began in,
        however long (`_log_pieces`)."""
        pending: dict[str, tuple[bytes, str | None]] = {}
        """Per stream, the start of a line still open, and its request."""
        logged = 0
        async for name, request_id, chunk in pieces:
            rest, line_request = pending.pop(name, (b"", request_id))
            *lines, rest = (rest + chunk).split(b"\n")
            for line in lines:
                self._log_pieces(line, name, line_request, ended=True)
                line_request = request_id
                logged += 1
                if logged % RELAY_TURN_LINES == 0:  # a read holds up to ~1 300 short lines, ~40 ms to log:
                    await asyncio.sleep(0)  # the event loop serves its requests in between
            if rest := self._log_pieces(rest, name, line_request, ended=False):
                pending[name] = rest, line_request
        for name, (rest, line_request) in pending.items():
            self._log_pieces(rest, name, line_request, ended=True)

    def _log_pieces(self, line: bytes, stream: str, request_id: str | None, ended: bool) -> bytes:
        """Log a line (`ended`), or what can be logged yet of one still open (the rest is returned). One past
        LOG_LINE_LIMIT bytes is logged in pieces of at most that, each cut between two UTF-8 characters and never
        inside one of `_unsplit` (the spellings of the version's variables' values, the secrets among them), which
        `_masked`, the deployer's and the fixture's masking would then miss: more than LOG_LINE_LIMIT - UNSPLIT_BYTES - 3
        bytes save the last. A piece of an open line is cut only once UNSPLIT_BYTES more have come, so that the
        pieces are the same however the line was read: a line was cut where a read happened to end (100 000
        bytes: whole, or 69 534 and 30 466), and a cut that took all that had come logged an empty line after it."""
        while len(line) > (LOG_LINE_LIMIT if ended else LOG_LINE_LIMIT + UNSPLIT_BYTES):
            cut = unsplit_cut(line, utf8_cut(line[:LOG_LINE_LIMIT]), self._unsplit)
            self._log_output(line[:cut], stream, request_id)
            line = line[cut:]
        if not ended:
            return line
        self._log_output(line, stream, request_id)
        return b""

    def _log_output(self, data: bytes, stream: str, request_id: str | None) -> None:
        """Log one line the deployment printed (or a piece of one), with the request it printed it for, the stream
        and the line as printed as fields. The version's secrets are masked."""
        printed = self._masked(data.decode(errors="replace"))
        log.info("[%s] %s%s", self.label, protocol.request_tag(request_id) if request_id else "", printed,
                 extra={**self.log_fields, "request_id": request_id, "stream": stream, "printed": printed})


class WorkerProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's own, which also tells when the worker's process has exited (`Instance.exited`, which the pool
    awaits beside other things). Its stdout and stderr are not asyncio's pipes but the instance's own
    (`DescriptorReader`), so `Process.wait` waits for the process only, not also for a child it forked, which
    holds them, and its channel, open."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=2 ** 16, loop=loop)  # asyncio.subprocess' default
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)
