"""The instances that run a package as a version (`new_pool`): for the `--package`, at start and at each
`--reload` save (`emulator.serving`'s `revise`), and for every version built later (`emulator.builds`), each with its
environment variables, its `Deployment` context, its Python environment and its limits."""

from __future__ import annotations

from contract.calling import deployment_file_name
from contract.files import DEFAULT_BUCKET
from contract.package import Package
from emulator.environments import version_environment
from emulator.runtime.instance import Launch
from emulator.runtime.manager import Runtime
from emulator.runtime.pool import InstancePool
from emulator.runtime.python_envs import PythonEnvironment
from emulator.settings import Settings
from emulator.state import Deployment, Project, Revision, Version, instance_environment, instance_secrets


def new_pool(project: Project, deployment: Deployment, version: Version, package: Package, settings: Settings,
             runtime: Runtime, revision: Revision | None = None, environment: str | None = None) -> InstancePool:
    """The instances that run `package` (`revision`'s, if it came as one) as `version` of `deployment`
    (started with `pool.start()`): `--instances` of them, in the version's own Python environment (of
    the base `environment` a build gives, else the one the revision was built in; its requirements'
    `${NAME}`s filled in from the variables the instances get), each held to
    `--instance-memory-mb`, telling the runtime's events what happens to them."""
    user_environment = instance_environment(project, deployment, version, package, settings)
    secrets = instance_secrets(project, deployment, version, settings)
    launch = Launch(
        project=project.name,
        deployment=deployment.name,
        version=version.name,
        revision_id=revision.id if revision else None,
        secrets=secrets,
        package_dir=package.directory,
        deployment_file=deployment_file_name(user_environment),
        environment={"SYS_DEFAULT_BUCKET": DEFAULT_BUCKET, **user_environment},
        python_environment=PythonEnvironment(environment or (revision.environment if revision else
                                                             version_environment(version.settings)),
                                             package.directory, package.manifest.apt_packages,
                                             package.manifest.adds_apt_sources, user_environment, secrets),
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
