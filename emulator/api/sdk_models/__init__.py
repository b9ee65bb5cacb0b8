"""Every body the API reads or writes, named and shaped field for field as the `ubiops` 4.15 SDK's
models, with the functions that render them from the emulator's state:

- `management`: projects, deployments, versions, revisions, environments, the user, the status;
- `requests`: deployment requests and their history;
- `files`: buckets and files;
- `logs`: log lines; `instances`: instances and their events.
- `variables`: environment variables.
"""
