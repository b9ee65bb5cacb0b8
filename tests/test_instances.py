"""Instances through the real SDK, against a real emulator with two instances of a package that
crashes on request: each worker process is listed with its status and times, at version and project
level, page by page; a crash is in the crashed instance's events and in the logs under its id; unknown
instances are 404 and bad filters a clear 400; a deleted version's instances keep their events, and are
not a new version's of the same name. (The official CLI's `ubiops instances` and
`ubiops project_instances`: tests/test_cli.py; every kind of loss, in process:
tests/runtime/test_instance_history.py.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, Emulator, eventually, start_emulator, zip_bytes


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator[Emulator]:
    """An emulator of its own: its instances crash here, and the tests count them."""
    emulator = start_emulator("crashing", tmp_path_factory.mktemp("instances"), "--instances", "2")
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def api(emulator) -> ubiops.CoreApi:
    return emulator.sdk()


def all_running(api: ubiops.CoreApi, seconds: float = 30) -> list[ubiops.InstanceList]:
    """The version's instances, once both are running (a crashed one is replaced in the background)."""
    deadline = time.monotonic() + seconds
    while True:
        instances = api.instances_list(PROJECT, DEPLOYMENT, "v1").results
        if [i.status for i in instances] == ["running"] * 2:
            return instances
        assert time.monotonic() < deadline, [i.status for i in instances]
        time.sleep(0.05)


def test_each_worker_process_is_an_instance_with_its_status_and_times(api):
    instances = all_running(api)
    assert len({i.id for i in instances}) == 2
    for instance in instances:
        assert instance.time_created <= instance.time_updated
        detail = api.instances_get(PROJECT, DEPLOYMENT, instance.id, "v1")
        assert (detail.id, detail.deployment, detail.version, detail.status) == (instance.id, DEPLOYMENT, "v1", "running")
        assert api.project_instances_get(PROJECT, instance.id).deployment == DEPLOYMENT
    in_project = api.project_instances_list(PROJECT).results
    assert {(i.id, i.deployment, i.version) for i in in_project} == {(i.id, DEPLOYMENT, "v1") for i in instances}
    assert len(api.instances_list(PROJECT, DEPLOYMENT, "v1", status="initialising,running").results) == 2
    assert api.project_instances_list(PROJECT, status="pending").results == []
    events = api.instance_events_list(PROJECT, DEPLOYMENT, instances[0].id, "v1").results
    assert [e.description for e in events][-3:] == [
        "Instance status changed to running", "Instance status changed to initialising", "Instance created"], \
        "newest first"


def test_instances_come_a_page_at_a_time(api):
    first = api.instances_list(PROJECT, DEPLOYMENT, "v1", limit=1)
    assert len(first.results) == 1 and first.previous is None and first.next
    (cursor,) = parse_qs(urlparse(first.next).query)["cursor"]
    second = api.instances_list(PROJECT, DEPLOYMENT, "v1", limit=1, cursor=cursor)
    assert len(second.results) == 1 and second.next is None and second.previous
    assert {first.results[0].id, second.results[0].id} == {i.id for i in all_running(api)}


def test_a_crash_is_an_event_of_the_instance_that_crashed_and_in_the_logs_under_its_id(api):
    before = {i.id: len(api.instance_events_list(PROJECT, DEPLOYMENT, i.id, "v1").results) for i in all_running(api)}
    failed = api.deployment_requests_create(PROJECT, DEPLOYMENT, {"mode": "sys_exit"})
    assert failed.status == "failed"
    after = {i.id: [e.description for e in api.instance_events_list(PROJECT, DEPLOYMENT, i.id, "v1").results]
             for i in all_running(api)}
    (crashed,) = [i for i, events in after.items() if len(events) > before[i]]
    assert after[crashed][:4] == [
        "Instance status changed to running",
        "Instance status changed to initialising",
        "Instance restarted in a new process",
        "Instance lost (crash): The instance stopped (exit code 3) while handling the request; it is being restarted",
    ]
    (stopped,) = api.logs_list(PROJECT, query=f'| instance_id="{crashed}" |= "stopped: exit code 3"')
    assert stopped.metadata.system and stopped.metadata.level == "error"


@pytest.mark.parametrize("call, message", [
    (lambda api: api.instances_get(PROJECT, DEPLOYMENT, "no-such-instance", "v1"), "Instance not found"),
    (lambda api: api.instance_events_list(PROJECT, DEPLOYMENT, "no-such-instance", "v1"), "Instance not found"),
    (lambda api: api.project_instances_get(PROJECT, "no-such-instance"), "Instance not found"),
    (lambda api: api.instances_list(PROJECT, DEPLOYMENT, "v9"), "Version not found"),
    (lambda api: api.instance_events_list(PROJECT, DEPLOYMENT, "no-such-instance", "v9"), "Version not found"),
    (lambda api: api.project_instances_list("no-such-project"), "Project not found"),
])
def test_unknown_instances_versions_and_projects_are_404(api, call, message):
    with pytest.raises(ubiops.ApiException) as refused:
        call(api)
    assert (refused.value.status, json.loads(refused.value.body)) == (404, {"error": message})


@pytest.mark.parametrize("arguments, message", [
    ({"status": "running,stopped"}, "status: unknown instance status stopped; use pending, initialising, running, stopping"),
    ({"cursor": "abc"}, "cursor: 'abc' is not a cursor; use the next or previous URL of a page"),
    ({"cursor": "9" * 5000}, f"cursor: '{'9' * 5000}' is not a cursor; use the next or previous URL of a page"),
    ({"limit": 0}, "query limit: Input should be greater than or equal to 1"),
    ({"limit": 251}, "query limit: Input should be less than or equal to 250"),
])
def test_bad_filters_are_refused_with_400_and_the_reason(api, arguments, message):
    for call in (lambda: api.instances_list(PROJECT, DEPLOYMENT, "v1", **arguments),
                 lambda: api.project_instances_list(PROJECT, **arguments)):
        with pytest.raises(ubiops.ApiException) as refused:
            call()
        assert (refused.value.status, json.loads(refused.value.body)) == (400, {"error": message})


def test_a_deleted_versions_instances_keep_their_events_and_are_not_those_of_a_new_version_of_its_name(api, tmp_path):
    """Before, the events of a deleted version's instances were a 404 (`Version not found`), though they
    are kept to be read; and once a version of that name was made again, its URL served the old
    instances' events as its own."""
    package = tmp_path / "package.zip"
    package.write_bytes(zip_bytes({"deployment_package/deployment.py":
                                   b"class Deployment:\n    def request(self, data):\n        return data\n"}))

    def new_v1() -> set[str]:
        """Make version v1 of `again`; its instances' ids once they run."""
        api.deployment_versions_create(PROJECT, "again", ubiops.DeploymentVersionCreate(version="v1"))
        api.revisions_file_upload(PROJECT, "again", "v1", file=str(package))
        return eventually(lambda: (found := api.instances_list(PROJECT, "again", "v1").results)
                          and all(i.status == "running" for i in found) and {i.id for i in found}, "v1 runs")

    def events(instance_id: str) -> list[str]:
        return [e.description for e in api.instance_events_list(PROJECT, "again", instance_id, "v1").results]

    api.deployments_create(PROJECT, {"name": "again", "input_type": "plain", "output_type": "plain"})
    try:
        deleted = new_v1()
        api.deployment_versions_delete(PROJECT, "again", "v1")
        assert {events(i)[0] for i in deleted} == {"Instance stopped"}, "readable by the deleted version's names"
        made_again = new_v1()
        assert not made_again & deleted
        for instance_id in deleted:
            for call in (api.instance_events_list, api.instances_get):
                with pytest.raises(ubiops.ApiException) as refused:
                    call(PROJECT, "again", instance_id, "v1")
                assert (refused.value.status, json.loads(refused.value.body)) == (404, {"error": "Instance not found"})
        assert all(events(i)[-1] == "Instance created" and "Instance stopped" not in events(i) for i in made_again)
    finally:
        api.deployments_delete(PROJECT, "again")


def test_renaming_restarts_the_instances_under_the_new_names(tmp_path):
    """Before, the instances kept the old names: `instances_list` by the new ones was empty, and what
    the deployment printed later was logged under the old names, out of reach of a query by the new;
    the request history stayed under the old names too."""
    emulator = start_emulator("printing", tmp_path)
    try:
        api = emulator.sdk()
        before = api.deployment_requests_create(PROJECT, DEPLOYMENT, data="before")
        api.deployments_update(PROJECT, DEPLOYMENT, {"name": "renamed"})
        api.deployment_versions_update(PROJECT, "renamed", "v1", {"version": "v9"})
        assert [r.id for r in api.deployment_version_requests_list(PROJECT, "renamed", "v9")] == [before.id], \
            "the history follows the new names"
        assert {r.version for r in api.revisions_list(PROJECT, "renamed", "v9")} == {"v9"}, "and its revisions name it"
        eventually(lambda: [(i.deployment, i.version, i.status) for i in api.project_instances_list(PROJECT).results]
                   == [("renamed", "v9", "running")], "the one instance runs under the new names")
        assert [i.status for i in api.instances_list(PROJECT, "renamed", "v9").results] == ["running"]
        request = api.deployment_version_requests_create(PROJECT, "renamed", "v9", data="after")
        printed = eventually(lambda: api.logs_list(PROJECT, query=f'| deployment_request_id="{request.id}" and '
                                                                  'system="false"'), "the request's lines are stored")
        assert {(line.metadata.deployment_name, line.metadata.deployment_version) for line in printed} == {("renamed", "v9")}
    finally:
        emulator.stop()
