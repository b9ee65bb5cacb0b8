"""`python -m deployer init|package|check|push|status|request`: ship the package the emulator tested.

Settings come from `[tool.deployer]` in `pyproject.toml` (flags override them), the token from
`UBIOPS_API_TOKEN` and the host from `UBIOPS_API_HOST`. Every failure is one line on stderr (and, with
`--output json`, an object on stdout: the error, and for `push` what it changed at UbiOps).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract.config import CHECKS, ConfigError, DeployerConfig, load_config, secret_values
from contract.manifest import ManifestError, parse_environment_variables
from contract.requests import COMPLETED, RETENTION_MODES
from contract.versions import instance_range_problem
from deployer.bundle import build_bundle, warn_of_links
from deployer.checks import check_bundle
from deployer.client import Api
from deployer.errors import DeployerError
from deployer.progress import Reporter
from deployer.push import PushOptions, push
from deployer.request import send_request
from deployer.scaffold import init_deployment
from deployer.status import format_status, project_status
from deployer.variables import configured_variables


def parse_args(argv: list[str]) -> argparse.Namespace:
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", choices=("text", "json"), default=argparse.SUPPRESS,
                        help="json: a machine-readable summary on stdout (before or after the command)")
    parser = argparse.ArgumentParser(prog="python -m deployer", description=__doc__.split("\n")[0], parents=[output])
    commands = parser.add_subparsers(dest="command", required=True)
    initializer = commands.add_parser("init", help="start a new deployment: a package that passes its "
                                      "first test, and its [tool.deployer] section")
    initializer.add_argument("name", help="the deployment's name (lowercase letters, digits, dashes)")
    initializer.add_argument("--input", action="append", default=[], metavar="NAME:TYPE",
                             help="an input field (repeatable; none: plain text)")
    initializer.add_argument("--output", action="append", default=[], dest="outputs", metavar="NAME:TYPE",
                             help="an output field (repeatable; none: plain text)")
    initializer.add_argument("--package", default="deployment_package", help="the folder to write (default: %(default)s)")
    initializer.add_argument("--project", help="the UbiOps project (default: the config's, or the deployment's name)")
    commands.add_parser("package", parents=[output], help="build dist/<deployment>-<sha12>.zip")
    commands.add_parser("check", parents=[output], help="check the zip and run the emulator tests against it")
    pusher = commands.add_parser("push", parents=[output], help="check, then upload the same zip as a new version")
    pusher.add_argument("--skip-tests", action="store_true", help="upload without running the emulator tests (warns loudly)")
    pusher.add_argument("--update-fields", action="store_true", help="change an existing deployment's fields to the package's")
    pusher.add_argument("--yes", action="store_true",
                        help="with --update-fields: go on although existing versions were built for the old fields")
    pusher.add_argument("--version", help="the new version's name (default: v<highest+1>)")
    pusher.add_argument("--prune", action="store_true", help="at the version cap, delete the oldest non-default versions first")
    pusher.add_argument("--no-wait", dest="wait", action="store_false", help="return once uploaded, without waiting for the build")
    pusher.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the build (default: %(default)g)")
    pusher.add_argument("--promote", action="store_true",
                        help="make the new version the default once built and its smoke request completed (not with --no-wait)")
    pusher.add_argument("--dry-run", action="store_true", help="print the calls that would change something, without making them")
    pusher.add_argument("--environment", help="[tool.deployer] environment")
    pusher.add_argument("--instance-type-group", help="[tool.deployer] instance_type_group")
    pusher.add_argument("--minimum-instances", type=int, help="[tool.deployer] minimum_instances")
    pusher.add_argument("--maximum-instances", type=int, help="[tool.deployer] maximum_instances")
    pusher.add_argument("--maximum-idle-time", type=int, help="[tool.deployer] maximum_idle_time (seconds)")
    pusher.add_argument("--request-retention-mode", choices=RETENTION_MODES, help="[tool.deployer] request_retention_mode")
    pusher.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="a version label (repeatable)")
    pusher.add_argument("--max-versions", type=int, help="[tool.deployer] max_versions")
    commands.add_parser("status", parents=[output], help="deployments, versions, their status and the default")
    requester = commands.add_parser("request", parents=[output], help="send one request to the deployment")
    requester.add_argument("--file", type=Path, help="a file for the deployment's file input field")
    requester.add_argument("--version", help="a version (default: the deployment's default version)")
    requester.add_argument("--data", help="JSON object of input fields, over [tool.deployer] sample_input; "
                           "for a plain-text deployment, its text (default: sample_input)")
    args = parser.parse_args(argv)
    args.output = getattr(args, "output", "text")
    if args.command == "push" and not args.timeout > 0:  # `not >`: NaN too, which would wait forever
        parser.error("--timeout must be a positive number of seconds")
    if args.command == "push" and args.promote and not args.wait:
        parser.error("--promote waits for the build to succeed before making the version the default: "
                     "it cannot go with --no-wait")
    return args


def with_overrides(config: DeployerConfig, args: argparse.Namespace) -> DeployerConfig:
    """The config with `push`'s setting flags applied."""
    names = ("environment", "instance_type_group", "minimum_instances", "maximum_instances", "maximum_idle_time",
             "request_retention_mode", "max_versions")
    overrides: dict[str, Any] = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    for name, value in overrides.items():  # the rules the same settings meet in [tool.deployer]
        problem = CHECKS[name](value)
        if problem:
            raise DeployerError(f"--{name.replace('_', '-')} {problem}")
    try:
        labels = parse_environment_variables(args.label)
    except ManifestError:
        raise DeployerError(f"--label must be written KEY=VALUE, got {args.label}") from None
    if labels:
        overrides["labels"] = {**config.labels, **labels}
    config = dataclasses.replace(config, **overrides)
    problem = instance_range_problem(config.minimum_instances, config.maximum_instances)
    if problem:
        raise DeployerError(f"with the flags given, {problem}")
    return config


def push_options(args: argparse.Namespace) -> PushOptions:
    """`push`'s own flags; a --version that is no UbiOps name is refused by the rule `emulator_version`
    meets in the config, before anything runs (UbiOps refused it only after the tests and any pruning)."""
    if args.version is not None:
        problem = CHECKS["emulator_version"](args.version)
        if problem:
            raise DeployerError(f"--version {problem}")
    return PushOptions(skip_tests=args.skip_tests, update_fields=args.update_fields, version=args.version,
                       prune=args.prune, wait=args.wait, timeout=args.timeout, promote=args.promote,
                       dry_run=args.dry_run, yes=args.yes)


def run(args: argparse.Namespace, say: Callable[[str], None]) -> tuple[Any, int]:
    """Do the command; its result (printed as text or JSON) and the exit code."""
    if args.command == "init":
        return init_deployment(Path.cwd(), args.name, args.package, args.input, args.outputs, args.project), 0
    config = load_config(section_required=True)
    if args.command == "package":
        bundle = build_bundle(config)
        warn_of_links(bundle, say)
        return {"path": str(bundle.path), "size": bundle.size, "sha256": bundle.sha256, "files": len(bundle.files)}, 0
    if args.command == "check":
        variables = configured_variables(config)
        bundle = build_bundle(config)
        say(f"package {bundle.path.name}: {bundle.size} bytes, sha256 {bundle.sha256}")
        warn_of_links(bundle, say)
        report = check_bundle(config, bundle, run_tests=True, say=say, variables=variables)
        result = {"passed": report.passed, "sha256": bundle.sha256, "summary": report.summary(),
                  "checks": [dataclasses.asdict(c) for c in report.checks]}
        return result, 0 if report.passed else 1
    if args.command == "push":
        options = push_options(args)
        summary = push(with_overrides(config, args), options, say)
        smoke = summary.get("smoke")  # failed, or answered otherwise than the emulator: what was tested is not what runs
        failed = bool(smoke and (smoke["status"] != COMPLETED or smoke["differences"])) or "promotion_skipped" in summary
        return summary, 1 if failed else 0
    api = Api(say=say, secrets=secret_values(config).values())  # a failed request's error may quote one
    try:
        if args.command == "status":
            return project_status(api, config), 0
        answer = send_request(api, config, args.file, args.version, args.data)
        return answer, 0 if answer["status"] == COMPLETED else 1
    finally:
        api.close()


def render(command: str, result: dict[str, Any]) -> str:
    if command == "status":
        return format_status(result)
    if command == "init":
        dropped = (f"  the old [tool.deployer]'s {', '.join(result['dropped'])} are not in the new one: add back what still "
                   f"applies\n" if result["dropped"] else "")
        steps = "".join(f"  {step}\n" for step in result["next"])
        wrote = f"wrote {result['package']}/ ({', '.join(result['files'])}) and [tool.deployer] in {result['config']}:\n"
        return (wrote + dropped + steps).rstrip()
    if command == "package":
        return f"{result['path']}\n  size {result['size']} bytes\n  sha256 {result['sha256']}"
    if command == "check":
        return result["summary"]
    if command == "push":  # the smoke request and the variables were reported as they happened
        return "\n".join(f"{key}: {value}" for key, value in result.items() if key not in ("smoke", "environment_variables"))
    return json.dumps(result, indent=2)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    as_json = args.output == "json"
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # started by `nohup`: hangups stay ignored, as asked
        signal.signal(signal.SIGHUP, _interrupt)

    say = Reporter(sys.stderr if as_json else sys.stdout)
    try:
        result, code = run(args, say)
    except (DeployerError, ConfigError) as exc:
        say.end_status()
        print(f"deployer: error: {exc}", file=sys.stderr)
        if as_json:
            print(json.dumps(_failure(args.command, str(exc), getattr(exc, "changes", [])), indent=2))
        sys.exit(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        say.end_status()
        print("deployer: interrupted", file=sys.stderr)
        if as_json:
            print(json.dumps(_failure(args.command, "interrupted", []), indent=2))
        sys.exit(130)
    print(json.dumps(result, indent=2, default=str) if as_json else render(args.command, result))
    sys.exit(code)


def _failure(command: str, error: str, changes: list[str]) -> dict[str, Any]:
    """What `--output json` puts on stdout for a command that failed: a script reading stdout got nothing,
    and what a push had changed at UbiOps was only in the error line on stderr."""
    return {"error": error, **({"changes": changes} if command == "push" else {})}


def _interrupt(_signal: int, _frame: object) -> None:
    """SIGTERM (a CI job cancelled or timed out) and SIGHUP (the terminal closed, an SSH session
    dropped) stop the command as Ctrl-C does, so the local emulator, the test process, the scratch
    folder (with the catalog's secrets) and a half-built zip go, and a push says what it left behind."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
