"""A local UbiOps: serves a deployment package on UbiOps' REST API, as UbiOps runs it.

`app` wires the parts: `api` (HTTP) over `request_runner` (one request's life) over `runtime`
(worker processes running user code), with `state`, `storage` and `signing` beside them.
"""
