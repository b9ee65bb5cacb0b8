"""`python -m deployer push`: check the zip, then ship those very bytes to UbiOps as a new version.

Order: secrets read from the local environment → project → the check's static checks → the
deployment read and everything that can be refused decided (its type and fields, the next version
name, the versions the cap makes room for), before the minutes of the emulator tests → the emulator
tests → SHA-256 re-checked → deployment created or its fields updated → versions pruned → version →
environment variables (on the version or the deployment) → revision upload → build followed → smoke
request to the new version, compared with the emulator's answer → promotion (only once the smoke
request completed with the emulator's output). Each step says what it did; a failure or Ctrl-C ends
saying every change made at UbiOps so far.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import ubiops

from contract.config import DeployerConfig
from contract.package import Package
from contract.requests import COMPLETED
from contract.spec import NamedField, Spec, same_fields, widget_changes
from deployer.bundle import Bundle, build_bundle, sha256_of, warn_of_links
from deployer.checks import check_bundle
from deployer.client import Api, upload_timeout
from deployer.errors import ApiError, DeployerError, Interrupted
from deployer.inputs import upload_inputs
from deployer.progress import wait_for_build
from deployer.smoke import compare_outputs
from deployer.variables import ConfiguredVariable, configured_variables, ship_variables

VERSION_NAME = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class PushOptions:
    skip_tests: bool = False
    update_fields: bool = False
    version: str | None = None
    prune: bool = False
    wait: bool = True
    timeout: float = 1800.0
    promote: bool = False
    dry_run: bool = False
    yes: bool = False
    """Go on with `update_fields` although the deployment's existing versions were built for the old fields."""


def push(config: DeployerConfig, options: PushOptions, say: Callable[[str], None]) -> dict[str, Any]:
    """Check and ship the package; the machine-readable summary of what was done.

    The secrets, the token and the project are checked first, so a push that could not finish says
    so at once rather than after the emulator tests.
    """
    variables = configured_variables(config)
    api = Api(dry_run=options.dry_run, say=say, secrets=[v.value for v in variables if v.secret])
    shipment = Shipment(config, options, variables, api, say)
    try:
        try:  # Ctrl-C before the shipment: it has changed nothing, which is said (the shipment says what it changed)
            api.read(f"project {config.project!r}", "projects_get", config.project)
            bundle = build_bundle(config)
            say(f"package {bundle.path.name}: {bundle.size} bytes, sha256 {bundle.sha256}")
            warn_of_links(bundle, say)
            if options.skip_tests:
                say("WARNING: --skip-tests: the emulator tests are NOT run; this package has not been tested")
            report = check_bundle(config, bundle, run_tests=not options.skip_tests, say=say, variables=variables,
                                  before_tests=shipment.plan)
        except KeyboardInterrupt:
            raise Interrupted("interrupted: nothing was changed at UbiOps") from None
        say(report.summary())
        if not report.passed:
            raise DeployerError("the check failed, so nothing was uploaded")
        try:
            return shipment.run(bundle, report.reference)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted: {shipment.left()}", shipment.changes.values()) from None
        except DeployerError as exc:
            if not shipment.changes:
                raise
            raise DeployerError(f"{exc}; {shipment.left()}", shipment.changes.values()) from None
    finally:
        api.close()


class Shipment:
    """One push's changes at UbiOps: decided by `plan` (before the emulator tests), made by `run`."""

    def __init__(self, config: DeployerConfig, options: PushOptions, variables: list[ConfiguredVariable], api: Api,
                 say: Callable[[str], None]) -> None:
        self.config, self.options, self.variables, self.api, self.say = config, options, variables, api, say
        self.changes: dict[str, str] = {}
        """What this push has changed at UbiOps so far, by subject; a subject's entry (the new version's)
        is replaced as it goes on, keeping its place."""
        self.deployment_exists = False
        self.set_on_deployment: list[str] = []
        self.package: Package
        self.drift: list[str] = []
        self.version = ""
        self.doomed: list[Any] = []
        self.bundle: Bundle
        self.reference: Any = None

    def plan(self, package: Package) -> None:
        """Read the deployment and decide everything that can be refused (its type and fields, the next
        version's name, the versions the cap makes room for), changing nothing: a refusal came only after
        the emulator tests, minutes after it could have."""
        self.package = package
        self.drift = self._compare_deployment()
        self.version = self._version_name()
        self.doomed = self._versions_to_prune()

    def _did(self, message: str, subject: str, left: str | None = None) -> None:
        """Report a change made, and keep what it `left` at UbiOps (the message itself by default) for
        the final word of a push that fails or is interrupted. A dry run has printed the call instead."""
        if not self.options.dry_run:
            self.say(message)
            self.changes[subject] = left or message

    def left(self) -> str:
        """What this push changed at UbiOps, for the message that ends it early."""
        if not self.changes:
            return "nothing was changed at UbiOps"
        return f"changed at UbiOps so far: {'; '.join(self.changes.values())}"

    def run(self, bundle: Bundle, reference: Any) -> dict[str, Any]:
        """Ship the tested zip as planned: a private copy of it, checked against the tested SHA-256 before
        anything changes at UbiOps, is what is uploaded (the zip in dist/ is anyone's to change meanwhile).
        `reference` is the emulator's answer to the sample input (None: tests skipped)."""
        assert hasattr(self, "package"), "planned by the check, which passed"
        self.bundle, self.reference = bundle, reference
        with contextlib.ExitStack() as stack:
            try:  # the zip's folder gone, the disk full: said in one line, before anything is uploaded
                tested = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="deployer-push-"))) / self.bundle.path.name
                if self.bundle.hold is not None:
                    self.bundle.hold.copy_to(tested)
                else:
                    shutil.copyfile(self.bundle.path, tested)
                actual = sha256_of(tested)
            except OSError as exc:
                raise DeployerError(f"cannot copy {self.bundle.path} to upload it: {exc}; nothing was changed "
                                    "at UbiOps") from None
            if actual != self.bundle.sha256:
                raise DeployerError(f"{self.bundle.path} changed after it was checked (sha256 {actual}, "
                                    f"tested {self.bundle.sha256}); nothing was changed at UbiOps")
            return self._ship(tested)

    def _ship(self, tested: Path) -> dict[str, Any]:
        project, deployment, version = self.config.project, self.config.deployment, self.version
        # Every refusal known up front was made by `plan`: only now is anything changed at UbiOps.
        if not self.deployment_exists:
            self._create_deployment()
        elif self.drift:
            self._update_fields(self.drift)
        self._prune(self.doomed)
        self._create_version(version)
        shipped = ship_variables(self.api, self.config, version, self.variables, self._level_exists(), self.say,
                                 changed=self._variable_set)
        revision = self._upload(version, tested)
        summary: dict[str, Any] = {
            "project": project, "deployment": deployment, "version": version, "revision": revision,
            "sha256": self.bundle.sha256, "build_status": "dry run" if self.options.dry_run else "not waited for",
            "promoted": False, "smoke": None,
            "url": f"{self.api.host}/projects/{project}/deployments/{deployment}/versions/{version}/requests",
            "dry_run": self.options.dry_run, "environment_variables": shipped,
        }
        if not self.options.wait:
            return summary
        if revision is None:  # a dry run: what follows the upload is printed too
            self.say(f"would  wait for the build: revisions_get({project!r}, {deployment!r}, <the new revision>, "
                     f"{version!r}) until it ends (at most {self.options.timeout:g} s)")
        else:
            try:
                summary["build_status"] = wait_for_build(self.api, project, deployment, version, revision,
                                                         self.options.timeout, self.say)
            except DeployerError:  # its message says how the build stands (failed, or still going on)
                self.changes["version"] = f"revision {revision} was uploaded to {deployment}/{version}"
                raise
            built = f"{deployment}/{version} is built and available"
            self.changes["version"] = f"{built} (not made the default)" if self.options.promote else built
        # The smoke request goes to the version itself before it is promoted: one that fails it, or
        # answers otherwise than the emulator, never becomes what the deployment's callers are served.
        if self.config.sample_input:
            summary["smoke"] = self._smoke(version)
        elif self.options.promote:
            self.say(f"no sample_input: no smoke request is sent, so {version} is made the default untested")
        if self.options.promote:
            refused = _promotion_refused(summary["smoke"])
            if refused:
                self.say(f"NOT promoted: the smoke request to {version} {refused}, so the default version of "
                         f"{deployment} stays as it was and {version} is left available, not the default")
                summary["promotion_skipped"] = f"the smoke request {refused}"
                return summary
            self.api.write(f"deployment {deployment!r}", "deployments_update", project, deployment,
                           ubiops.DeploymentUpdate(default_version=version))
            summary["promoted"] = not self.options.dry_run
            self._did(f"{version} is now the default version of {deployment}", "version",
                      f"{deployment}/{version} is built, available and the default version")
        return summary

    def _compare_deployment(self) -> list[str]:
        """How an existing deployment's fields differ from the package's, once allowed to change
        (nothing for a deployment to create); DeployerError for a type or fields it must keep. Names
        and data types change only with --update-fields (and --yes over existing versions); widgets,
        which no version's code sees, change with the spec files."""
        project, name = self.config.project, self.config.deployment
        try:
            existing = self.api.read(f"deployment {name!r}", "deployments_get", project, name)
        except ApiError as exc:
            if exc.status != 404:
                raise
            return []
        self.deployment_exists = True
        kinds = [f"{direction} type: deployment {declared}, package {spec.kind}" for direction, declared, spec in (
            ("input", existing.input_type, self.package.input_spec), ("output", existing.output_type, self.package.output_spec))
            if declared != spec.kind]
        if kinds:
            raise DeployerError(f"deployment {name} has another type than the package ({'; '.join(kinds)}); "
                                f"a type cannot change: use another deployment name")
        drift = [*_drift("input", existing.input_fields, self.package.input_spec),
                 *_drift("output", existing.output_fields, self.package.output_spec)]
        # Widgets are how UbiOps' web form shows a field: no version's code sees them, so they follow
        # the spec files without --update-fields.
        widgets = [*_widget_drift("input", existing.input_fields, self.package.input_spec),
                   *_widget_drift("output", existing.output_fields, self.package.output_spec)]
        if not drift:
            return widgets
        if not self.options.update_fields:
            raise DeployerError(f"deployment {name} has other fields than the package ({'; '.join(drift)}); "
                                f"push with --update-fields to change the deployment's fields")
        built_for_old = [v.version for v in self.versions]
        if built_for_old and not self.options.yes:
            raise DeployerError(
                f"--update-fields changes the fields of every version of {name} ({'; '.join(drift)}); built for the "
                f"old fields: {', '.join(built_for_old)}, whose requests fail where their code does not take or give "
                f"the new ones; push again with --yes to go on, or push to another deployment")
        return drift + widgets

    def _create_deployment(self) -> None:
        name = self.config.deployment
        self.api.write(f"deployment {name!r}", "deployments_create", self.config.project, ubiops.DeploymentCreate(
            name=name, input_type=self.package.input_spec.kind, output_type=self.package.output_spec.kind,
            input_fields=self.package.input_spec.to_api(), output_fields=self.package.output_spec.to_api(),
            labels=self.config.labels or None))
        self._did(f"created deployment {name}", "deployment")

    def _update_fields(self, drift: list[str]) -> None:
        name = self.config.deployment
        self.api.write(f"deployment {name!r}", "deployments_update", self.config.project, name, ubiops.DeploymentUpdate(
            input_fields=self.package.input_spec.to_api(), output_fields=self.package.output_spec.to_api()))
        self._did(f"updated the fields of deployment {name}: {'; '.join(drift)}", "deployment",
                  f"the fields of deployment {name} were updated")

    def _level_exists(self) -> bool:
        """Whether the level the variables go to may set some already: never a new version, and a
        deployment only if it was there before this push."""
        return self.config.environment_variables_level == "deployment" and self.deployment_exists

    @cached_property
    def versions(self) -> list[Any]:
        """The deployment's versions before this push (listed once)."""
        if not self.deployment_exists:
            return []
        return self.api.read(f"deployment {self.config.deployment!r}", "deployment_versions_list",
                             self.config.project, self.config.deployment) or []

    def _version_name(self) -> str:
        names = [v.version for v in self.versions]
        if self.options.version:
            if self.options.version in names:
                raise DeployerError(f"version {self.options.version} of {self.config.deployment} exists already; "
                                    f"choose another --version")
            return self.options.version
        numbers = [int(m.group(1)) for m in map(VERSION_NAME.match, names) if m]
        return f"v{max(numbers, default=0) + 1}"

    def _versions_to_prune(self) -> list[Any]:
        """At the version cap, the oldest non-default versions to delete with --prune; without it,
        DeployerError naming them."""
        versions = self.versions
        cap = self.config.max_versions
        excess = len(versions) - cap + 1
        if excess <= 0:
            return []
        removable = sorted((v for v in versions if not v.default), key=lambda v: v.creation_date)
        oldest = ", ".join(v.version for v in removable[:excess]) or "none (only the default is left)"
        deployment = self.config.deployment
        if not self.options.prune:
            raise DeployerError(f"deployment {deployment} is at its cap of {cap} versions (max_versions); oldest "
                                f"non-default: {oldest}; delete them or push with --prune")
        if len(removable) < excess:
            raise DeployerError(f"deployment {deployment} is at its cap of {cap} versions and too few are not the default to prune")
        return removable[:excess]

    def _prune(self, doomed: list[Any]) -> None:
        deployment = self.config.deployment
        for old in doomed:
            self.api.write(f"version {old.version!r}", "deployment_versions_delete", self.config.project, deployment, old.version)
            self._did(f"pruned version {old.version} (created {old.creation_date:%Y-%m-%d %H:%M})", f"pruned {old.version}",
                      f"version {old.version} was pruned")

    def _variable_set(self, name: str) -> None:
        """Note a variable created or updated on the deployment (one on the new version goes with it)."""
        if self.config.environment_variables_level == "deployment":
            self.set_on_deployment.append(name)
            self.changes["variables"] = (f"{', '.join(self.set_on_deployment)} set on deployment {self.config.deployment} "
                                         f"(its running versions restart with them)")

    def _create_version(self, version: str) -> None:
        config = self.config
        self.api.write(f"deployment {config.deployment!r}", "deployment_versions_create", config.project, config.deployment,
                       ubiops.DeploymentVersionCreate(
                           version=version, environment=config.environment,
                           instance_type_group_name=config.instance_type_group,
                           minimum_instances=config.minimum_instances, maximum_instances=config.maximum_instances,
                           maximum_idle_time=config.maximum_idle_time,
                           request_retention_mode=config.request_retention_mode, labels=config.labels or None,
                           description=f"{self.bundle.path.name} sha256:{self.bundle.sha256}"))
        self._did(f"created version {version}", "version",
                  f"version {version} of {config.deployment} was created without a package (it stays unavailable: delete it)")

    def _upload(self, version: str, tested: Path) -> str | None:
        """Upload the zip; the new revision's id (None in a dry run). The upload waits for its answer
        longer the larger the zip (`upload_timeout`); an upload that fails without UbiOps' refusal (no
        answer, a 5xx, as a gateway's timeout) may still have arrived, which `_arrived` looks up."""
        try:
            created = self.api.write(f"version {version!r}", "revisions_file_upload", self.config.project,
                                     self.config.deployment, version, file=str(tested),
                                     _request_timeout=upload_timeout(self.bundle.size))
        except ApiError as exc:
            if exc.status < 500:
                raise
            revision = self._arrived(version, exc)
        except DeployerError as exc:
            revision = self._arrived(version, exc)
        else:
            if created is None:
                return None
            revision = created.revision
        self._did(f"uploaded revision {revision} (sha256 {self.bundle.sha256})", "version",
                  f"revision {revision} of {self.config.deployment}/{version} was uploaded and its build goes "
                  f"on at UbiOps; follow it with `python -m deployer status`")
        return revision

    def _arrived(self, version: str, failure: DeployerError) -> str:
        """The revision an upload that failed without UbiOps' refusal left on the new version, as UbiOps
        lists it; else `failure` again, with what is known of the version kept for the push's last word
        (it was said to have no package, to be deleted, though the upload had arrived and was built)."""
        try:
            revisions = self.api.read(f"version {version!r}", "revisions_list", self.config.project,
                                      self.config.deployment, version) or []
        except DeployerError as exc:
            self.changes["version"] = (f"version {version} of {self.config.deployment} was created, and whether its "
                                       f"upload arrived is not known (listing its revisions failed too: {exc}): see "
                                       "`python -m deployer status`")
            raise failure from None
        if not revisions:
            self.changes["version"] = (f"version {version} of {self.config.deployment} was created without a package: "
                                       "UbiOps listed no revision of it once the upload failed (it stays unavailable "
                                       "unless the upload still lands: see `python -m deployer status`, then delete it)")
            raise failure from None
        revision: str = max(revisions, key=lambda r: r.creation_date).id
        self.say(f"the upload failed ({failure}), but UbiOps lists revision {revision} of {self.config.deployment}/"
                 f"{version}: the upload arrived; going on")
        return revision

    def _smoke(self, version: str) -> dict[str, Any] | None:
        """Send the sample input to the new version and compare its output with the emulator's; None in a
        dry run, which prints the calls. What UbiOps answers is shown without any secret's value."""
        config, shown = self.config, self.api.shown
        data = upload_inputs(self.api, config.project, self.package.input_spec, config.sample_input, config.root)
        answer = self.api.write(f"version {version!r}", "deployment_version_requests_create",
                                config.project, config.deployment, version, data)
        if answer is None:
            return None
        if answer.status != COMPLETED:
            error = shown(answer.error_message) if answer.error_message else None
            self.say(f"smoke request FAILED: {error or 'no error message'}")
            return {"status": answer.status, "error_message": error, "differences": []}
        if self.reference is None:
            self.say("smoke request completed (no emulator reference to compare with: tests were skipped)")
            return {"status": answer.status, "error_message": None, "differences": []}
        differences = [shown(d) for d in compare_outputs(self.package.output_spec, self.reference, answer.result)]
        self.say("smoke request completed; output matches the emulator's" if not differences else
                 "smoke request completed, but its output differs from the emulator's:\n  " + "\n  ".join(differences))
        return {"status": answer.status, "error_message": None, "differences": differences}


def _promotion_refused(smoke: dict[str, Any] | None) -> str | None:
    """Why the smoke request's outcome keeps the new version from being the default (None: it may be):
    it failed, or its output differs from the emulator's for the same input beyond `compare_outputs`'
    tolerance, so what the emulator tests passed is not what UbiOps serves."""
    if smoke is None:
        return None
    if smoke["status"] != COMPLETED:
        return "failed"
    if smoke["differences"]:
        return "answered otherwise than the emulator"
    return None


def _drift(direction: str, declared: list[Any] | None, packaged: Spec) -> list[str]:
    """How the deployment's fields differ from the package's (names and data types)."""
    if same_fields(declared or [], packaged.fields):
        return []
    return [f"{direction} fields: deployment {_names(declared or [])}, package {_names(packaged.fields)}"]


def _widget_drift(direction: str, declared: list[Any] | None, packaged: Spec) -> list[str]:
    """The fields whose widgets differ between the deployment and the package (of those both have)."""
    changed = widget_changes(declared or [], packaged.fields)
    return [f"{direction} widgets of {', '.join(changed)}"] if changed else []


def _names(fields: Iterable[NamedField]) -> str:
    return ", ".join(f"{f.name}:{f.data_type}" for f in fields) or "none"
