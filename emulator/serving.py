"""Putting a package into service: the `--package`, opened from a folder or a zip (`open_package`)
and registered under its project, deployment and version (`serve_package`); and the instances that
run a package as a version (`new_pool`), for the `--package` at start and for every version built or
reloaded later (put in service by `emulator.runtime.manager.Runtime.replace`)."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from contract.archive import ALWAYS_LEFT_OUT_DIRECTORIES, ALWAYS_LEFT_OUT_SUFFIXES, extract_package, package_files
from contract.files import DEFAULT_BUCKET
from contract.package import Package, read_package
from emulator.environments import version_environment
from emulator.runtime.instance import Launch
from emulator.runtime.loader import deployment_file_name
from emulator.runtime.manager import Runtime
from emulator.runtime.pool import InstancePool
from emulator.runtime.python_envs import PythonEnvironment
from emulator.settings import Settings
from emulator.state import Deployment, Project, Registry, Revision, Version, variables_seen

log = logging.getLogger("emulator")


class PackageError(ValueError):
    """A `--package` the emulator cannot serve; the message says what to fix."""


def open_package(source: Path, unpack_root: Path) -> Package:
    """Read a package folder, or extract a zip under `unpack_root` first (UbiOps' zip layout rules)."""
    if source.is_file():
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
        target = unpack_root / f"{source.stem}-{digest}"
        shutil.rmtree(target, ignore_errors=True)
        return read_package(extract_package(source, target))
    if source.is_dir():
        return read_package_folder(source)
    raise PackageError(f"no package at {source}: give a package folder or a .zip")


def read_package_folder(folder: Path) -> Package:
    """Read a package folder, served as it is; what its zip would leave out is logged (`make serve` and
    `--reload` serve the folder, UbiOps gets the zip, and `deployer check` tests the zip)."""
    package = read_package(folder)
    left_out = left_out_of_zip(folder)
    if left_out:
        log.info("served from the folder, with what its zip leaves out and UbiOps will not have: %s",
                 ", ".join(left_out[:10]) + (f" and {len(left_out) - 10} more" if len(left_out) > 10 else ""))
    return package


def left_out_of_zip(folder: Path) -> list[str]:
    """The top-level names under a package folder that hold files its zip leaves out (`.ubiops-ignore`,
    `.env`, links to folders, which the zip's walk does not follow), a folder's with a `/`; the
    interpreter's own caches are not counted."""
    folder = folder.resolve()
    shipped = set(package_files(folder))
    names: set[str] = set()
    for parent, directories, files in os.walk(folder):
        here = Path(parent).relative_to(folder)
        directories[:] = [d for d in directories if d not in ALWAYS_LEFT_OUT_DIRECTORIES]
        links = [d for d in directories if Path(parent, d).is_symlink()]
        names.update(_top(here, name, is_folder=True) for name in links)
        names.update(_top(here, name, is_folder=False) for name in files
                     if not name.endswith(ALWAYS_LEFT_OUT_SUFFIXES) and (here / name).as_posix() not in shipped)
    return sorted(names)


def _top(here: Path, name: str, is_folder: bool) -> str:
    """The top-level name `here / name` lies under, as `left_out_of_zip` lists it."""
    return here.parts[0] + "/" if here.parts else name + ("/" if is_folder else "")


def serve_package(registry: Registry, runtime: Runtime, settings: Settings, package: Package) -> Version:
    """Register the `--package` under the configured names, served by its instances.

    The command line wins over saved state (`emulator.catalog`): a saved deployment of the same name
    takes the package's fields and keeps its other versions; a saved version of the same name is
    replaced, but its environment variables are kept. The package's version is the default unless the
    saved default still exists. The `--package` version of an earlier start, under other names, is
    forgotten (it is kept only for its variables), and so is its deployment's default: a default always
    names a version that exists, or none.
    """
    project = registry.projects.setdefault(settings.project, Project(settings.project))
    deployment = project.deployments.get(settings.deployment)
    if deployment is None:
        deployment = Deployment(settings.deployment, project.name, package.input_spec, package.output_spec)
        project.deployments[deployment.name] = deployment
    deployment.input_spec, deployment.output_spec = package.input_spec, package.output_spec
    kept = deployment.versions.get(settings.version)
    if kept is not None and not kept.from_command_line:
        log.warning("the saved version %s/%s is replaced by --package %s", deployment.name, settings.version, settings.package)
    _forget_earlier_package_versions(registry, deployment, kept)
    version = Version(settings.version, package, kept.variables if kept else {}, from_command_line=True)
    version.settings.update(environment_name=settings.base_environment, minimum_instances=settings.instances,
                            maximum_instances=settings.instances)
    runtime.replace(version, new_pool(project, deployment, version, package, settings, runtime))
    deployment.versions[version.name] = version
    for saved in (d for p in registry.projects.values() for d in p.deployments.values()):
        if saved.default_version not in saved.versions:  # the `--package` version of an earlier start, say
            saved.default_version = version.name if saved is deployment else None
    return version


def _forget_earlier_package_versions(registry: Registry, served: Deployment, replaced: Version | None) -> None:
    """Drop the `--package` version kept from an earlier start under other names (not the one now
    `replaced`), and its deployment if that held nothing else (unless it is the one served now)."""
    for project, deployment, version in list(registry.versions()):
        if version.from_command_line and version is not replaced:
            deployment.remove_version(version.name)
            log.warning("forgot %s/%s, the --package version of an earlier start, and its environment variables",
                        deployment.name, version.name)
            if deployment is not served and not deployment.versions and not deployment.variables:
                del project.deployments[deployment.name]


def new_pool(project: Project, deployment: Deployment, version: Version, package: Package, settings: Settings,
             runtime: Runtime, revision: Revision | None = None) -> InstancePool:
    """The instances that run `package` (`revision`'s, if it came as one) as `version` of `deployment`
    (started with `pool.start()`): `--instances` of them, in the version's own Python environment (of
    the base environment the revision was built in, whatever the version names now), each held to
    `--instance-memory-mb`, telling the runtime's events what happens to them."""
    user_environment = instance_environment(project, deployment, version, package, settings)
    launch = Launch(
        project=project.name,
        deployment=deployment.name,
        version=version.name,
        revision_id=revision.id if revision else None,
        package_dir=package.directory,
        deployment_file=deployment_file_name(user_environment),
        environment={"SYS_DEFAULT_BUCKET": DEFAULT_BUCKET, **user_environment},
        python_environment=PythonEnvironment(revision.environment if revision else version_environment(version.settings),
                                             package.directory, package.manifest.apt_packages),
        init_context={
            "project": project.name,
            "project_id": project.id,
            "deployment": deployment.name,
            "deployment_id": deployment.id,
            "version": version.name,
            "version_id": version.id,
            "input_type": deployment.input_spec.kind,
            "output_type": deployment.output_spec.kind,
            "input_fields": deployment.input_spec.names,
            "output_fields": deployment.output_spec.names,
            "language": "python",
            "environment_variables": user_environment,
        },
        output_file_fields={f.name: f.data_type for f in deployment.output_spec.fields if f.is_file},
        memory_limit_mb=settings.instance_memory_mb,
        start_timeout_seconds=settings.start_timeout_seconds,
    )
    return InstancePool(launch, settings.instances, runtime.environments, runtime.events)


def instance_environment(project: Project, deployment: Deployment, version: Version, package: Package,
                         settings: Settings) -> dict[str, str]:
    """The variables a version's instances get, in `os.environ` and `context["environment_variables"]`,
    each overriding the ones before: `ubiops.yaml`'s (built into the package's environment), the
    project's, the deployment's and the version's own (as UbiOps orders them), then `--env`, the
    developer's own overrides for every version this emulator runs."""
    return {**package.manifest.environment_variables,
            **{seen.variable.name: seen.variable.value for seen in variables_seen(project, deployment, version)},
            **settings.environment}
