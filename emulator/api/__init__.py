"""The HTTP layer: UbiOps' REST contract on top of the backends, `emulator.registry.Registry` (management)
and `emulator.request_runner` (requests). A route parses the call, calls a backend, renders the answer.

- `errors`: UbiOps' error shape, `{"error": "..."}`, for every failure; each domain error
  (`emulator.exceptions`, storage's, the runtime's) has its one answer there.
- `unserved`: the SDK operation a call no route takes was meant for, answered 501 naming it.
- `origins`, `auth`, `limits`: foreign pages and hosts, the optional token, the body size limit (ASGI middleware).
- `sdk_models`: every body read or written, as the `ubiops` SDK models it, rendered from state.
- `request_body`: JSON, text and multipart request bodies turned into request data.
- `paths`, `labels`: the request endpoints' two levels, and the `labels` list filter.
- `dependencies`: the backends, handed to each route.
- `routes_*`: one module per group of endpoints; `routes_storage` serves signed URLs, outside `/v2`.
"""
