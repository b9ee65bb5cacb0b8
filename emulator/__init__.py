"""A local UbiOps: serves deployment packages on UbiOps' REST API, as UbiOps runs them.

`app` wires the parts. From the outside in:

- `api/`: the HTTP layer (routes, request bodies, response shapes, errors, auth, limits);
- `request_runner`: one request's life, from checked input to recorded outcome, kept in
  `request_store`; files in `storage`, handed out through `signing`;
- `builds`: uploaded revisions unzipped, checked and started; `serving` starts a package's
  instances; `reload` restarts them when the package folder changes;
- `runtime/`: the worker processes that run user code, one per instance;
- `state`: projects, deployments, versions and revisions (state only); `settings`, `services`,
  `data_lock`: how one emulator is configured and holds its data folder.
"""
