"""Logs through the real SDK (`logs_list`), against a real emulator serving a package that prints to
stdout and stderr and fails when asked: a failed request's lines are found by its id, user lines
apart from the emulator's own, a time window and a limit select lines in their order, the query the
SDK's `wait_for_deployment_version(..., stream_logs=True)` sends works, and bad filters are a clear
400. (The official CLI's `ubiops logs`: tests/test_cli.py; the query language and retention in
detail: tests/parts/test_log_store.py.)"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, eventually, start_emulator

EXCEPTION_MESSAGE = "An exception occurred in the request. See the logs for details."


@pytest.fixture(scope="module")
def api(emulators) -> ubiops.CoreApi:
    return emulators("printing").sdk()


def wait_for_lines(api: ubiops.CoreApi, query: str, done: Callable[[list[str]], bool], seconds: float = 10,
                   **window: object) -> list[ubiops.LogList]:
    """The lines `query` finds, oldest first, once their texts satisfy `done` (what a deployment prints
    reaches the log asynchronously, beside the request's answer)."""
    deadline = time.monotonic() + seconds
    while True:
        lines = sorted(api.logs_list(PROJECT, query=query, **window), key=lambda line: line.timestamp)
        if done([line.log for line in lines]):
            return lines
        assert time.monotonic() < deadline, f"{query}: {[line.log for line in lines]}"
        time.sleep(0.05)


def test_a_request_that_prints_and_fails_is_found_in_the_logs_by_its_id(api):
    failed = api.deployment_requests_create(PROJECT, DEPLOYMENT, "fail")
    assert (failed.status, failed.error_message) == ("failed", EXCEPTION_MESSAGE)
    lines = wait_for_lines(api, f'| deployment_request_id="{failed.id}"',
                           lambda texts: any("ValueError: asked to fail" in text for text in texts))
    user = {line.log: line.metadata for line in lines if not line.metadata.system}
    assert user["handling 'fail'"].level == "info", "stdout, as printed: without the emulator's tags"
    assert user["a warning about 'fail'"].level == "error", "stderr"
    assert any(text.startswith("Traceback") for text in user), "the traceback, on stderr"
    (ended,) = [line for line in lines if line.metadata.system]
    assert ended.log.startswith(f"{DEPLOYMENT}/v1 request {failed.id} failed in ")
    assert ended.log.endswith(f" s: {EXCEPTION_MESSAGE}") and ended.metadata.level == "error"

    (instance,) = api.instances_list(PROJECT, DEPLOYMENT, "v1").results
    for metadata in [*user.values(), ended.metadata]:
        assert (metadata.deployment_name, metadata.deployment_version, metadata.deployment_request_id) == (
            DEPLOYMENT, "v1", failed.id)
    assert {metadata.instance_id for metadata in [*user.values(), ended.metadata]} == {instance.id}, \
        "the request's end too: it had none"


def test_user_lines_and_the_emulators_own_lines_are_told_apart(api):
    completed = api.deployment_requests_create(PROJECT, DEPLOYMENT, "apart")
    printed = wait_for_lines(api, f'| deployment_request_id="{completed.id}" | system="false"', lambda texts: len(texts) == 2)
    assert [(line.log, line.metadata.level) for line in printed] == [
        ("handling 'apart'", "info"), ("a warning about 'apart'", "error")]
    (ended,) = api.logs_list(PROJECT, query=f'| deployment_request_id="{completed.id}" and system="true"')
    assert ended.log.endswith(" s") and f"request {completed.id} completed in " in ended.log
    assert ended.metadata.level == "info"
    started = api.logs_list(PROJECT, query='| system="true" and deployment_request_id="" |= "] ready"')
    assert started and all(line.metadata.instance_id and line.metadata.level == "info" for line in started)
    loaded = api.logs_list(PROJECT, query='| system="false" |= "printing: loaded"')
    assert loaded and loaded[0].metadata.deployment_request_id is None, "printed in __init__, outside a request"


def test_a_printed_line_that_begins_like_a_request_s_tag_is_kept_as_printed(api):
    """Any printed line that began `[request X] ` was filed under request X, less that text, wherever it came from:
    `__init__` (here), a thread between requests, a process the deployment started. The request goes beside the
    text now, never read from it."""
    loading = wait_for_lines(api, '|= "loading weights"', bool)
    assert {(line.log, line.metadata.deployment_request_id) for line in loading} == {
        ("[request 1234] loading weights", None)}, "printed in __init__, outside a request"
    assert api.logs_list(PROJECT, query='| deployment_request_id="1234"') == []


def test_what_a_request_s_processes_write_is_found_by_its_id(api):
    """What is written to the file descriptors 1 and 2 themselves (a subprocess, native code) was filed under no
    request: the lines that explain a failed subprocess were missing from its request's logs."""
    run = api.deployment_requests_create(PROJECT, DEPLOYMENT, "descriptors")
    lines = wait_for_lines(api, f'| deployment_request_id="{run.id}" and system="false"', lambda texts: len(texts) == 3)
    assert sorted((line.log, line.metadata.level) for line in lines) == [
        ("[request worker-3] batch done", "info"), ("fd err", "error"), ("fd out", "info")], "a tag in the text is text"
    (instance,) = api.instances_list(PROJECT, DEPLOYMENT, "v1").results
    assert {line.metadata.instance_id for line in lines} == {instance.id}


def test_lines_printed_and_logged_on_stderr_keep_the_order_they_were_written_in(api):
    """stdout and stderr went down two pipes, each read a chunk at a time: the warning logged between two
    prints was stored after both."""
    before = time.time_ns()
    steps = api.deployment_requests_create(PROJECT, DEPLOYMENT, "steps")
    query = f'| deployment_request_id="{steps.id}" and system="false"'
    wait_for_lines(api, query, lambda texts: len(texts) == 3)
    forward = api.logs_list(PROJECT, query=query, start=before, end=time.time_ns())
    assert [(line.log, line.metadata.level) for line in forward] == [
        ("step 1: loading", "info"), ("WARNING:root:input looks odd", "error"), ("step 2: done", "info")]


def test_a_flood_of_lines_on_stdout_and_stderr_keeps_its_order(api):
    """Each stderr line of the flood was stored up to a read of stdout (64 KiB) late."""
    flood = api.deployment_requests_create(PROJECT, DEPLOYMENT, "flood 4000")
    lines = wait_for_lines(api, f'| deployment_request_id="{flood.id}" and system="false"',
                           lambda texts: len(texts) == 4000, limit=5000)
    assert [line.log for line in lines] == [f"WARNING:root:line {n}" if n % 100 == 99 else f"line {n}" for n in range(4000)]


def test_a_time_window_and_a_limit_select_lines_in_their_order(api):
    def handled(data: str) -> None:
        api.deployment_requests_create(PROJECT, DEPLOYMENT, data)
        wait_for_lines(api, f'|= "handling \'{data}\'"', lambda texts: len(texts) == 1)

    before = time.time_ns()
    handled("first")
    between = time.time_ns()
    handled("second")
    after = time.time_ns()
    query = '|= "handling \'" |~ `(first|second)`'

    def texts(start: object, end: object, **limit: int) -> list[str]:
        return [line.log for line in api.logs_list(PROJECT, query=query, start=start, end=end, **limit)]

    assert texts(before, after) == ["handling 'first'", "handling 'second'"], "forward: oldest first"
    assert texts(after, before) == ["handling 'second'", "handling 'first'"], "backward: newest first"
    assert texts(before, between) == ["handling 'first'"]
    assert texts(before, after, limit=1) == ["handling 'first'"]
    assert texts(after, before, limit=1) == ["handling 'second'"]
    iso = datetime.fromtimestamp(between / 1e9, UTC).isoformat(timespec="microseconds")
    assert texts(iso, str(after // 1_000_000_000 + 1)) == ["handling 'second'"], "ISO 8601 and seconds"
    assert [line.log for line in api.logs_list(PROJECT, query=query, limit=1)] == ["handling 'second'"], \
        "no window: the last day, newest first"


def test_the_query_that_streams_logs_while_waiting_for_a_version_goes_on_from_the_last_line(api):
    """What `ubiops.utils.wait_for_deployment_version(..., stream_logs=True)` sends: label filters in
    backticks joined by `and`, an ISO start, then the last line's timestamp + 1, and `end` as
    nanoseconds."""
    query = f"| deployment_name=`{DEPLOYMENT}` and deployment_version=`v1`"
    start = datetime.now(UTC).isoformat(timespec="microseconds")
    for data in ("stream 1", "stream 2"):
        api.deployment_requests_create(PROJECT, DEPLOYMENT, data)
    lines = wait_for_lines(api, query + ' |= "handling"', lambda texts: len(texts) == 2, start=start, end=time.time_ns())
    assert [line.log for line in lines] == ["handling 'stream 1'", "handling 'stream 2'"]
    rest = api.logs_list(PROJECT, query=query, start=lines[0].timestamp + 1, end=time.time_ns(), limit=1000)
    assert [line.log for line in rest if line.log.startswith("handling")] == ["handling 'stream 2'"]


def test_the_ids_of_the_deployment_and_its_version_select_their_lines(api):
    """`deployment_id` and `deployment_version_id` were taken as labels the emulator leaves empty: a query
    by either found nothing."""
    api.deployment_requests_create(PROJECT, DEPLOYMENT, "by id")
    handled = '|= "handling \'by id\'"'
    wait_for_lines(api, handled, lambda texts: len(texts) == 1)
    ids = {"deployment_id": api.deployments_get(PROJECT, DEPLOYMENT).id,
           "deployment_version_id": api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").id}

    def found(query: str) -> list[str]:
        return [line.log for line in api.logs_list(PROJECT, query=f"{query} {handled}")]

    for label, id_ in ids.items():
        assert found(f'| {label}="{id_}"') == found(f'| {label}=~"{id_[:8]}.*"') == ["handling 'by id'"], label
        assert found(f'| {label}!="{id_}"') == found(f'| {label}!~"{id_[:8]}.*"') == [], label
        assert found(f'| {label}="00000000-0000-4000-8000-000000000000"') == [], f"{label}: an id no {label[:-3]} has"
    assert found(f'| deployment_id="{ids["deployment_version_id"]}"') == [], "the version's id is not the deployment's"


def test_an_id_selects_the_lines_logged_under_the_names_its_deployment_and_version_have_now(tmp_path):
    """The lines keep the names they were logged with (README): renamed, a deployment's and its version's
    ids find what they printed since, under their new names."""
    emulator = start_emulator("printing", tmp_path)
    try:
        api = emulator.sdk()
        deployment_id = api.deployments_get(PROJECT, DEPLOYMENT).id
        version_id = api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").id
        api.deployments_update(PROJECT, DEPLOYMENT, {"name": "renamed"})
        api.deployment_versions_update(PROJECT, "renamed", "v1", {"version": "v9"})
        eventually(lambda: [(i.deployment, i.version, i.status) for i in api.project_instances_list(PROJECT).results]
                   == [("renamed", "v9", "running")], "the instance runs under the new names")
        request = api.deployment_version_requests_create(PROJECT, "renamed", "v9", data="after")
        query = f'| deployment_request_id="{request.id}" and system="false"'
        wait_for_lines(api, query, lambda texts: len(texts) == 2)
        for label, id_ in (("deployment_id", deployment_id), ("deployment_version_id", version_id)):
            lines = api.logs_list(PROJECT, query=f'{query} | {label}="{id_}"')
            assert sorted(line.log for line in lines) == ["a warning about 'after'", "handling 'after'"], label
    finally:
        emulator.stop()


@pytest.mark.parametrize("arguments, message", [
    ({"query": '| colour="red"'}, "query: unknown label 'colour' at position 2; the labels are deployment_name, "),
    ({"query": "|~ `(`"}, "query: '(' is not a regular expression"),
    ({"query": "|~ `a(?=b)`"}, "query: 'a(?=b)' is not a regular expression (invalid perl operator: (?="),
    ({"query": "|~ `a{1001}`"}, "query: 'a{1001}' is not a regular expression (invalid repetition size"),
    ({"query": "|~ `[^a]{1000}[^b]{1000}`"}, "query: '[^a]{1000}[^b]{1000}' is too large a regular expression "
                                              "(RE2 compiles it past 256 KiB); repeat less of it"),
    ({"query": '|= "\\ud800"'}, "query: the string at position 3 holds a string with a lone UTF-16 surrogate"),
    ({"start": "9" * 5000, "end": "1"}, "start: '9999"),
    ({"query": '|="a"' * 1000}, "query: more than 500 line and label filters (from position 2500)"),  # SQLite: a 500
    ({"query": "deployment_name"}, "query: expected a line filter (|= != |~ !~) or | and a label filter"),
    ({"start": "last week", "end": "2024-01-01"}, "start: 'last week' is not an ISO 8601 date"),
    ({"limit": 0}, "query limit: Input should be greater than or equal to 1"),
    ({"limit": 5001}, "query limit: Input should be less than or equal to 5000"),
])
def test_bad_filters_are_refused_with_400_and_the_reason(api, arguments, message):
    with pytest.raises(ubiops.ApiException) as refused:
        api.logs_list(PROJECT, **arguments)
    assert refused.value.status == 400
    assert json.loads(refused.value.body)["error"].startswith(message)


@pytest.mark.parametrize("query", ['|~ "(.*.*)*qqz"', '| deployment_request_id=~ "(.|..)*qqz"'])
def test_a_regex_that_backtracks_without_end_in_python_is_answered(api, query):
    """Before, Python's `re` tried `(.*.*)*qqz` against each line for hours, holding the interpreter: the
    whole server stopped answering, and even SIGTERM did not stop it. RE2, as Loki's LogQL, runs in
    linear time (the client's timeout only guards the test against hanging)."""
    api.deployment_requests_create(PROJECT, DEPLOYMENT, "x" * 40)
    assert api.logs_list(PROJECT, query=query, limit=10, _request_timeout=60) == []


def test_the_logs_of_an_unknown_project_are_404(api):
    with pytest.raises(ubiops.ApiException) as refused:
        api.logs_list("no-such-project")
    assert (refused.value.status, json.loads(refused.value.body)) == (404, {"error": "Project not found"})
