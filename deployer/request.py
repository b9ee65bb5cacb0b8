"""`python -m deployer request --file portrait.jpg [--version v3]`: one request to the deployed model.

The data is the configured `sample_input`, overridden by `--data`; `--file` fills the first file
field. Files are uploaded to the project's `default` bucket first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contract.config import DeployerConfig
from contract.spec import SpecError, parse_fields
from deployer.client import Api
from deployer.errors import DeployerError
from deployer.inputs import upload_inputs


def send_request(api: Api, config: DeployerConfig, file: Path | None, version: str | None, data_json: str | None) -> dict[str, Any]:
    project, name = config.project, config.deployment
    deployment = api.read(f"deployment {name!r}", "deployments_get", project, name)
    try:
        spec = parse_fields([{"name": f.name, "data_type": f.data_type} for f in deployment.input_fields or []])
        extra = json.loads(data_json) if data_json else {}
    except (SpecError, json.JSONDecodeError) as exc:
        raise DeployerError(f"--data: {exc}") from None
    if not isinstance(extra, dict):
        raise DeployerError("--data must be a JSON object")
    data = {**config.sample_input, **extra}
    if file is not None:
        field = next((f for f in spec.fields if f.data_type == "file"), None)
        if field is None:
            raise DeployerError(f"deployment {name} has no file input field for --file")
        data[field.name] = str(file.resolve())
    data = upload_inputs(api.client, project, spec, data, config.root)
    if version:
        answer = api.read(f"version {version!r}", "deployment_version_requests_create", project, name, version, data)
    else:
        answer = api.read(f"deployment {name!r}", "deployment_requests_create", project, name, data)
    return {"id": answer.id, "version": answer.version, "status": answer.status,
            "error_message": answer.error_message, "result": answer.result}
