"""Running user code: each instance is a worker process, as each UbiOps instance is a container.

- `loader`: UbiOps' rules for importing and calling a deployment (runs in the worker).
- `worker`: the worker process's main loop.
- `reaper`: each instance's init, which forks its worker and ends whatever the instance started.
- `protocol`: the messages between server and worker.
- `instance`: one worker process, seen from the server.
- `pool`: the instances of one version, sharing one request queue.
- `python_envs`: each version's own Python environment, built from its requirements with uv.
- `manager`: the runtime, holding every version's instances and replacing them.
"""
