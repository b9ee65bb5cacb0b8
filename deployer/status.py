"""`python -m deployer status`: the project's deployments, their versions, each one's status, and
which version is the default."""

from __future__ import annotations

from typing import Any

from contract.config import DeployerConfig
from deployer.client import Api


def project_status(api: Api, config: DeployerConfig) -> dict[str, Any]:
    project = config.project
    deployments = api.read(f"project {project!r}", "deployments_list", project)
    summary: dict[str, Any] = {"project": project, "deployments": []}
    for deployment in deployments:
        versions = api.read(f"deployment {deployment.name!r}", "deployment_versions_list", project, deployment.name)
        summary["deployments"].append({
            "name": deployment.name,
            "default_version": next((v.version for v in versions if v.default), None),
            "versions": [{"version": v.version, "status": v.status, "default": bool(v.default),
                          "active_revision": v.active_revision, "latest_revision": v.latest_revision,
                          "created": v.creation_date.isoformat() if v.creation_date else None}
                         for v in sorted(versions, key=lambda v: v.creation_date)],
        })
    return summary


def format_status(summary: dict[str, Any]) -> str:
    lines = [f"project {summary['project']}"]
    for deployment in summary["deployments"]:
        lines.append(f"  {deployment['name']} (default: {deployment['default_version'] or 'none'})")
        for v in deployment["versions"]:
            lines.append(f"    {v['version']:<12} {v['status']:<12} {'default' if v['default'] else '':<8} {v['created'] or ''}")
        if not deployment["versions"]:
            lines.append("    no versions")
    if not summary["deployments"]:
        lines.append("  no deployments")
    return "\n".join(lines)
