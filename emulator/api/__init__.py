"""The HTTP layer: UbiOps' REST contract on top of `emulator.state` and `emulator.request_runner`.

- `errors`: UbiOps' error shape, `{"error": "..."}`, for every failure.
- `auth`, `limits`: the optional token and the body size limit (ASGI middleware).
- `schemas`, `request_schemas`: the response bodies the `ubiops` SDK expects, built from state;
  `management_bodies`: the request bodies of the management calls.
- `request_body`: JSON, text and multipart request bodies turned into request data.
- `paths`, `labels`: the request endpoints' two levels, and the `labels` list filter.
- `routes_*`: one module per group of endpoints; `routes_storage` serves signed URLs, outside `/v2`.
"""
