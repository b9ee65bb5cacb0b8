"""Environment variables at project, deployment and version level: list, create, get, update, delete
and copy, as the SDK's `*_environment_variables_*` calls (and so `ubiops environment_variables …`)
expect them. One handler serves each call at every level; it finds the level in the path.

The rules (names, duplicates, secrets staying secret, inheritance) are the registry's
(`emulator.registry.Registry`), which also restarts the instances that see a change.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from emulator.api.dependencies import Services, get_services
from emulator.api.paths import DEPLOYMENT, PROJECT, VERSION, at_levels
from emulator.api.sdk_models.variables import (
    EnvironmentVariableCopy,
    EnvironmentVariableCreate,
    EnvironmentVariableList,
    EnvironmentVariableUpdate,
    InheritedEnvironmentVariableList,
    inherited_list,
    variable_list,
)
from emulator.state import Scope, Seen

router = APIRouter()
VARIABLES = "/environment-variables"
VARIABLE = VARIABLES + "/{variable_id}"
BELOW_PROJECT = (DEPLOYMENT, VERSION)


async def path_scope(request: Request, project_name: str) -> Scope:
    """FastAPI dependency: the project, deployment or version the path names."""
    return Scope(project_name, request.path_params.get("deployment_name"), request.path_params.get("version"))


@router.get(PROJECT + VARIABLES, response_model=list[EnvironmentVariableList])
async def project_environment_variables_list(
    project_name: str, services: Services = Depends(get_services)
) -> list[EnvironmentVariableList]:
    return [variable_list(seen.variable) for seen in services.registry.variables_at(Scope(project_name))]


@at_levels(router.get, VARIABLES, BELOW_PROJECT, response_model=list[InheritedEnvironmentVariableList])
async def environment_variables_list(
    scope: Scope = Depends(path_scope), services: Services = Depends(get_services)
) -> list[InheritedEnvironmentVariableList]:
    """A deployment's or version's variables, those it inherits included."""
    return [inherited_list(seen) for seen in services.registry.variables_at(scope)]


@at_levels(router.post, VARIABLES, response_model=EnvironmentVariableList, status_code=201)
async def environment_variables_create(
    body: EnvironmentVariableCreate, scope: Scope = Depends(path_scope), services: Services = Depends(get_services)
) -> EnvironmentVariableList:
    return variable_list(await services.registry.create_variable(scope, body.name, body.value, body.secret))


@at_levels(router.get, VARIABLE, response_model=EnvironmentVariableList)
async def environment_variables_get(
    variable_id: str, scope: Scope = Depends(path_scope), services: Services = Depends(get_services)
) -> EnvironmentVariableList:
    return variable_list(services.registry.variable(scope, variable_id))


@at_levels(router.patch, VARIABLE, response_model=EnvironmentVariableList)
async def environment_variables_update(
    variable_id: str, body: EnvironmentVariableUpdate, scope: Scope = Depends(path_scope),
    services: Services = Depends(get_services),
) -> EnvironmentVariableList:
    updated = await services.registry.update_variable(scope, variable_id, body.name, body.value, body.secret)
    return variable_list(updated)


@at_levels(router.delete, VARIABLE, status_code=204)
async def environment_variables_delete(
    variable_id: str, scope: Scope = Depends(path_scope), services: Services = Depends(get_services)
) -> Response:
    await services.registry.delete_variable(scope, variable_id)
    return Response(status_code=204)


@at_levels(router.post, "/copy-environment-variables", BELOW_PROJECT,
           response_model=list[InheritedEnvironmentVariableList])
async def environment_variables_copy(
    body: EnvironmentVariableCopy, scope: Scope = Depends(path_scope), services: Services = Depends(get_services)
) -> list[InheritedEnvironmentVariableList]:
    """The copied variables as they now are at this level (its own, so not inherited)."""
    copied = await services.registry.copy_variables(scope, body.source_deployment, body.source_version)
    return [inherited_list(Seen(v)) for v in copied]
