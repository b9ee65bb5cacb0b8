"""`python -m deployer request --file portrait.jpg [--version v3]`: one request to the deployed model.

A structured deployment gets the configured `sample_input` (a table of fields), overridden by
`--data` (a JSON object); `--file` fills the first file field. Files are uploaded to the project's
`default` bucket first. A plain deployment gets the text `--data` gives (a JSON string is decoded; any
other text is sent as it is), else the configured `sample_input` (a string). A `sample_input` of the
other kind than the deployment's input is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contract.config import ConfigError, DeployerConfig, sample_input_problem
from contract.spec import PLAIN, SpecError, parse_fields
from deployer.client import Api
from deployer.errors import DeployerError
from deployer.inputs import upload_inputs


def send_request(api: Api, config: DeployerConfig, file: Path | None, version: str | None, data_json: str | None) -> dict[str, Any]:
    project, name = config.project, config.deployment
    deployment = api.read(f"deployment {name!r}", "deployments_get", project, name)
    problem = sample_input_problem(config.sample_input, deployment.input_type) if config.sample_input else None
    if problem:
        raise ConfigError(problem)
    if deployment.input_type == PLAIN:
        data: Any = _plain_data(name, config.sample_input, file, data_json)
    else:
        data = _structured_data(api, config, deployment, file, data_json)
    if version:
        answer = api.read(f"version {version!r}", "deployment_version_requests_create", project, name, version, data)
    else:
        answer = api.read(f"deployment {name!r}", "deployment_requests_create", project, name, data)
    error = api.shown(answer.error_message) if answer.error_message else answer.error_message
    return {"id": answer.id, "version": answer.version, "status": answer.status, "error_message": error,
            "result": answer.result}  # the result is the caller's data, as it is


def _plain_data(name: str, sample: dict[str, Any] | str, file: Path | None, data_json: str | None) -> str:
    """The text for a plain deployment: `--data` as a JSON string, or else as written; without it, the
    sample input's text."""
    if file is not None:
        raise DeployerError(f"deployment {name} takes plain text and has no file input field for --file")
    if data_json is None:
        if isinstance(sample, str):
            return sample
        raise DeployerError(f"deployment {name} takes plain text: give it with --data (e.g. --data 'hello') "
                            "or [tool.deployer] sample_input")
    try:
        text = json.loads(data_json)
    except json.JSONDecodeError:
        return data_json
    return text if isinstance(text, str) else data_json


def _structured_data(api: Api, config: DeployerConfig, deployment: Any, file: Path | None,
                     data_json: str | None) -> dict[str, Any]:
    """`sample_input` with `--data`'s fields over it and `--file` in the first file field, files uploaded."""
    try:
        spec = parse_fields([{"name": f.name, "data_type": f.data_type} for f in deployment.input_fields or []])
        extra = json.loads(data_json) if data_json else {}
    except (SpecError, json.JSONDecodeError) as exc:
        raise DeployerError(f"--data: {exc}") from None
    if not isinstance(extra, dict):
        raise DeployerError("--data must be a JSON object")
    assert isinstance(config.sample_input, dict), "send_request refuses a string sample_input for structured input"
    data = {**config.sample_input, **extra}
    if file is not None:
        field = next((f for f in spec.fields if f.data_type == "file"), None)
        if field is None:
            raise DeployerError(f"deployment {config.deployment} has no file input field for --file")
        data[field.name] = str(file.resolve())
    return upload_inputs(api, config.project, spec, data, config.root)
