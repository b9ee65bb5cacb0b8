"""UbiOps' deployment-package contract, written once and shared by the emulator and the deployer.

- `spec`: the input/output field specification and the checks UbiOps applies to request data.
- `files`: `ubiops-file://` URIs, the default bucket, and the file fields of request data.
- `requests`: request statuses and retention modes.
- `versions`: a version's default instance settings, and the range they must keep.
- `revisions`: a revision's build statuses.
- `environments`: UbiOps' base environments and the Python each one runs.
- `calling`: which arguments UbiOps passes to `Deployment`, `request` and `requests`.
- `archive`: the zip layout UbiOps accepts, and safe extraction.
- `package`: what a package folder declares (its fields, its `ubiops.yaml`), and the static checks of
  its code and requirements.
- `manifest`: `ubiops.yaml` (environment variables, system packages).
- `apt`: `ubiops.yaml`'s apt packages, judged by this machine's apt as UbiOps' `apt-get install` would.
- `requirements`: the places on disk `requirements.txt` names, none of them out of the package.
- `names`: what a project, deployment or version may be called.
- `text`: text UTF-8 can carry (no lone surrogate), and a long message shortened.
- `secrets`: masking secret values in what is shown or kept.
- `config`: the project's `[tool.deployer]` settings.
"""
