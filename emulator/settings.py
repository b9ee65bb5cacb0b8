"""How one emulator is run: which package, under which names, on which address."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from contract.archive import EMULATOR_DATA_DIRECTORY
from emulator.environments import OWN_ENVIRONMENT
from emulator.runtime.instance import START_TIMEOUT_SECONDS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DATA_DIR = Path(EMULATOR_DATA_DIRECTORY)
INSTANCE_MEMORY_MB = 2048
"""`--instance-memory-mb`'s default: `deployer check` gives the configured instance type group's instead."""


@dataclass(frozen=True)
class Settings:
    package: Path
    project: str
    deployment: str
    version: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    fd: int | None = None
    """The listening socket to serve, bound by the process that started this one (`--fd`): `host` and
    `port` are its address. None: uvicorn binds `host` and `port`."""
    instances: int = 1
    environment: dict[str, str] = field(default_factory=dict, repr=False)
    """`--env`'s variables, over `[tool.deployer]`'s for its own package (secrets among them: never shown)."""
    secret_names: frozenset[str] = frozenset()
    """Those of `environment` that `[tool.deployer]` names as secrets: masked as the API's secrets are."""
    warnings: tuple[str, ...] = ()
    """What the options given put at risk, logged at start: `[tool.deployer] secrets` this shell does not
    hold, a token others can read in the process list."""
    base_environment: str = OWN_ENVIRONMENT
    """The `--package` version's base environment (`--environment`), e.g. `python3-11`."""
    own_python: bool = False
    """Run every package in the emulator's own Python rather than its own environment (`--own-python`)."""
    environments_dir: Path | None = None
    """Where built environments are cached (None: the machine's cache, `python_envs.default_cache`)."""
    token: str | None = field(default=None, repr=False)
    data_dir: Path = DEFAULT_DATA_DIR
    reload: bool = False
    max_upload_mb: int = 100
    instance_memory_mb: int | None = INSTANCE_MEMORY_MB
    start_timeout_seconds: float = START_TIMEOUT_SECONDS
    """How long an instance's `Deployment.__init__` may take before its start fails (`--start-timeout`)."""
    max_versions: int | None = None
    """Refuse a deployment's next version beyond this many, as a UbiOps plan does (None: no cap)."""
    allowed_hosts: tuple[str, ...] = ()
    """`Host` names answered besides the listen address, localhost and loopback addresses (`--allow-host`)."""
    allowed_origins: tuple[str, ...] = ()
    """Web origins whose pages may call the API, with CORS (`--allow-origin`); see `emulator.api.origins`."""
    retention_sweep_seconds: float = 60
    """How often requests past their version's `request_retention_time` are deleted (`emulator.retention`)."""
    log_format: str = "text"
    """`text`, or `json`: one object per line, for log shippers (`emulator.console_log`)."""
    exit_with_parent: bool = False
    """Stop once the process that started this one ends (`--exit-with-parent`)."""
    access_log: bool = False
    """uvicorn's line per HTTP call (`--access-log`); off, each request's end is still logged: the
    line costs ~0.1 ms of server CPU per call, a tenth of a trivial request's (BENCHMARKS.md)."""
