"""A local UbiOps: serves deployment packages on UbiOps' REST API, as UbiOps runs them.

`app` wires the parts. From the outside in:

- `api/`: the HTTP layer (routes, request and response bodies, errors, origins, auth, limits),
  which parses a call, calls a backend and renders the answer;
- `state`: projects, deployments, versions and revisions; `registry`: the `Registry`, the management
  backend that changes them under UbiOps' rules, kept in `catalog`; `exceptions`: the domain errors
  the backends raise; `environments`: the system environments;
- `request_runner`: the requests backend, one request's life from checked input to recorded
  outcome, kept in `request_store`, and the rules of that history; files in `storage`, handed out
  through `signing`;
- `builds`: uploaded revisions unzipped, checked and started; `serving` opens the `--package` and
  serves it under its names; `version_instances` makes a version's instances (`new_pool`), for both;
  `reload` serves the package again when its folder changes;
- `runtime/`: the worker processes that run user code, one per instance, owned by its `manager`;
- `settings`, `data_lock`: how one emulator is configured and holds its data folder.
"""

EMULATOR_TOKEN_VARIABLE = "EMULATOR_TOKEN"
"""The variable holding the emulator's API token (else `--token`): read by the clients that start or call
one (`launcher`, `testing`, `python -m emulator request`), kept from deployments and their installers
(`runtime.python_envs`, `deployer.emulated`). At the package's root, so each imports it without a cycle."""
