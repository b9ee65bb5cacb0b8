"""Revisions: upload a package zip to a version (multipart part `file`), which starts its build
(`Registry.upload_revision`, `emulator.builds`); get and list revisions to follow the build (the
`--package` version's too, `emulator.serving.PackageVersion`); download the zip as uploaded; build a
revision again from it (`Registry.rebuild_revision`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, File, Form, UploadFile
from fastapi.responses import FileResponse

from emulator.api.dependencies import Services, get_services
from emulator.api.sdk_models import management

router = APIRouter()
LIST_PATH = "/projects/{project_name}/deployments/{deployment_name}/versions/{version}/revisions"
PATH = LIST_PATH + "/{revision_id}"


@router.post(LIST_PATH, response_model=management.RevisionCreate)
async def revisions_file_upload(
    project_name: str,
    deployment_name: str,
    version: str,
    file: UploadFile | None = File(None, description="the deployment package, a zip"),
    source_deployment: str | None = Form(None),
    source_version: str | None = Form(None),
    template_deployment_id: str | None = Form(None),
    services: Services = Depends(get_services),
) -> management.RevisionCreate:
    revision = await services.registry.upload_revision(
        project_name, deployment_name, version, file.file if file is not None else None,
        copy_from=source_deployment or source_version or template_deployment_id,
    )
    return management.revision_created(revision)


@router.get(LIST_PATH, response_model=list[management.RevisionList])
async def revisions_list(
    project_name: str, deployment_name: str, version: str, services: Services = Depends(get_services)
) -> list[management.RevisionList]:
    found = services.registry.version(project_name, deployment_name, version)
    return [management.revision_list(r) for r in found.revisions.values()]


@router.get(PATH, response_model=management.RevisionList)
async def revisions_get(
    project_name: str, deployment_name: str, version: str, revision_id: str, services: Services = Depends(get_services)
) -> management.RevisionList:
    return management.revision_list(services.registry.revision(project_name, deployment_name, version, revision_id))


@router.get(PATH + "/download")
async def revisions_file_download(
    project_name: str, deployment_name: str, version: str, revision_id: str, services: Services = Depends(get_services)
) -> FileResponse:
    zip_path = services.registry.revision_zip(project_name, deployment_name, version, revision_id)
    return FileResponse(zip_path, media_type="application/zip", filename=f"{deployment_name}-{version}.zip")


@router.post(PATH + "/rebuild", response_model=management.RevisionList)
async def revisions_rebuild(
    project_name: str,
    deployment_name: str,
    version: str,
    revision_id: str,
    data: Any = Body(None, description="ignored: the SDK sends an object, UbiOps documents none of its fields"),
    services: Services = Depends(get_services),
) -> management.RevisionList:
    revision = await services.registry.rebuild_revision(project_name, deployment_name, version, revision_id)
    return management.revision_list(revision)
