"""What `logs_list` asks for, read into SQL for `emulator.log_store`: its `query` (the part of
Grafana's LogQL that UbiOps documents) and its time window (`start`, `end`).

The query is a chain of stages, each one a further condition:
- line filters: `|= "text"` (contains), `!= "text"` (does not), `|~ "regex"`, `!~ "regex"`;
- label filters after `|`: `label = "v"`, `!=`, `=~` (the whole value matches), `!~`, joined by
  `and` and `or` (`and` binds first); a new `|` starts a new stage.
Strings are in double quotes (with JSON's escapes) or backticks (taken as they are). The labels are
UbiOps' (`LABELS`); those the emulator never sets (pipelines, environments…) are empty, as LogQL treats
a missing label. A line's `deployment_id` and `deployment_version_id` are those of the deployment and
version that have its names now (`Ids`, from the registry as the query is parsed): the stored lines
keep names, as UbiOps' labels would keep ids. At most `MAX_FILTERS` filters; each regular expression is compiled once per query
(`Condition.regexes`), within RE2's memory bound `REGEX_MEMORY`. Anything else is refused with a
message that says where and why.

The window: `start` and `end` (ISO 8601, or a timestamp in seconds or nanoseconds), `start` now and
`end` 24 hours ago unless given; `start` is included, `end` is not; `start` after `end` searches
backward (newest first). Neither: the last 24 hours, newest first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import re2

from contract.spec import json_value_problem
from emulator.exceptions import NotAllowed

if TYPE_CHECKING:
    from emulator.state import Project

STORED_LABELS = ("deployment_name", "deployment_version", "deployment_version_revision_id", "instance_id",
                 "deployment_request_id", "system", "level")
"""The labels each stored line has a column for, named as the label."""
LABELS = (*STORED_LABELS, "deployment_id", "deployment_version_id", "process_id", "environment_name", "environment_tag",
          "environment_build_id", "pipeline_id", "pipeline_name", "pipeline_version_id", "pipeline_version",
          "pipeline_object_id", "pipeline_object_name", "pipeline_request_id", "webhook_name")
"""Every label UbiOps' `logs_list` documents (the SDK's docstring, the CLI's `LOG_FILTERS`)."""
ID_LABELS = ("deployment_id", "deployment_version_id")
"""The labels a line's names stand for, through `Ids`."""
DEFAULT_HOURS = 24
NANOSECONDS = 1_000_000_000
SECONDS_BELOW = 10**11
"""A number below this is a timestamp in seconds (until the year 5138)…"""
NANOSECONDS_FROM = 10**17
"""…and one from this on is in nanoseconds (since 1973); one between is refused as ambiguous."""
REGEX_MEMORY = 256 * 1024
"""RE2's memory bound for each regular expression (its `max_mem`; RE2's default is 8 MiB), its program
and its cache of matching states together: a larger program is refused, which bounds a query of
`MAX_FILTERS` patterns to about 128 MiB, and the time one pattern takes over a line of the longest
kind (64 KiB) to about half a second (`[^a]{1000}` fits, `[^a]{1000}[^b]{1000}` does not)."""
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a pattern refused is the caller's 400, not a line on the emulator's stderr
_RE2_OPTIONS.max_mem = REGEX_MEMORY
LATEST = 2**63 - 1
"""The latest timestamp (ns) SQLite can hold (in 2262): later ones, and those before 1970, are clamped."""
MAX_FILTERS = 500
"""A query's line and label filters together, at most: each can nest the SQL condition one level deeper,
and SQLite refuses one nested 1000 deep ("Expression tree is too large"), at about 997 filters."""

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<op>\|=|\|~|!=|!~|=~|==|=|\||,)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)
_LINE_FILTERS = {"|=": "instr(log, ?) > 0", "!=": "instr(log, ?) = 0",
                 "|~": "line_matches(?, log)", "!~": "NOT line_matches(?, log)"}
_LABEL_MATCHERS = {"=": "{label} = ?", "==": "{label} = ?", "!=": "{label} != ?",
                   "=~": "label_matches(?, {label})", "!~": "NOT label_matches(?, {label})"}


@dataclass(frozen=True)
class Condition:
    """A SQL condition on the `logs` table and its parameters; the SQL functions `line_matches` and
    `label_matches` it calls are these methods."""

    sql: str
    params: tuple[object, ...] = ()
    regexes: Mapping[str, Any] = field(default_factory=dict)
    """Each of the query's patterns, compiled by RE2 once for the query: SQLite asks for every line,
    and a shared cache smaller than a query's patterns compiled each one again for each line (300
    patterns over 63 lines: 43 s)."""

    def label_matches(self, pattern: str, value: str | None) -> bool:
        """LogQL's `=~`: the pattern matches the whole value (a missing label is empty)."""
        return self.regexes[pattern].fullmatch(value or "") is not None

    def line_matches(self, pattern: str, line: str) -> bool:
        """LogQL's `|~`: the pattern matches somewhere in the line."""
        return self.regexes[pattern].search(line) is not None


@dataclass(frozen=True)
class Ids:
    """The ids of a project's deployments and versions now, by their names: what a line's `deployment_id` and
    `deployment_version_id` are (none for a line whose names no deployment or version has now)."""

    deployments: Mapping[str, str] = field(default_factory=dict)
    """Each deployment's id, by its name."""
    versions: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """Each version's id, by its deployment's name and its own."""

    @classmethod
    def of(cls, project: Project) -> Ids:
        """The ids of `project`'s deployments and versions now: the lines keep names, and a query may name the
        ids of the deployments and versions that have them now."""
        deployments = project.deployments.values()
        return cls({deployment.name: deployment.id for deployment in deployments},
                   {(deployment.name, version.name): version.id
                    for deployment in deployments for version in deployment.versions.values()})

    def label(self, name: str) -> str:
        """The SQL expression of the label `name` (one of ID_LABELS) for each stored line: '' where no id."""
        if name == "deployment_id":
            cases = [f"WHEN deployment_name = {_literal(deployment)} THEN {_literal(id_)}"
                     for deployment, id_ in self.deployments.items()]
        else:
            cases = [f"WHEN deployment_name = {_literal(deployment)} AND deployment_version = {_literal(version)} "
                     f"THEN {_literal(id_)}" for (deployment, version), id_ in self.versions.items()]
        return f"CASE {' '.join(cases)} ELSE '' END" if cases else "''"


NO_IDS = Ids()


@dataclass(frozen=True)
class Window:
    """Timestamps (ns) from `first` to `last`, both included, in the order asked."""

    first: int
    last: int
    newest_first: bool


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int


def parse_query(query: str, ids: Ids = NO_IDS) -> Condition:
    """The condition a `query` sets (true for an empty one), `ids` giving the lines' ID_LABELS; NotAllowed says
    what does not parse."""
    return _Parser(_tokens(query), ids).query()


def time_window(start: str | None, end: str | None, now_ns: int) -> Window:
    """The timestamps `start` and `end` select: a missing `start` is now and a missing `end` a day ago, as
    the CLI documents (`--start` "[default = now]", `--end` "[default = yesterday]"), so neither is the
    last 24 hours, newest first. `start` after `end` searches backward."""
    start_ns = now_ns if start is None else _timestamp("start", start)
    end_ns = now_ns - DEFAULT_HOURS * 3600 * NANOSECONDS if end is None else _timestamp("end", end)
    start_ns, end_ns = (min(max(ns, 0), LATEST) for ns in (start_ns, end_ns))
    if start_ns <= end_ns:
        return Window(start_ns, end_ns - 1, newest_first=False)
    return Window(end_ns + 1, start_ns, newest_first=True)


def _timestamp(name: str, value: str) -> int:
    text = value.strip()
    if re.fullmatch(r"\d{1,100}", text):  # longer, it is no time at all (and `int` refuses past 4300 digits)
        number = int(text)
        if number < SECONDS_BELOW:
            return number * NANOSECONDS
        if number >= NANOSECONDS_FROM:
            return number
        raise NotAllowed(f"{name}: {value!r} is neither a timestamp in seconds nor one in nanoseconds")
    if match := re.fullmatch(r"(\d{1,100})\.(\d*)", text):
        return int(match[1]) * NANOSECONDS + int(match[2][:9].ljust(9, "0"))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise NotAllowed(f"{name}: {value!r} is not an ISO 8601 date, nor a timestamp in seconds or nanoseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def _tokens(query: str) -> list[Token]:
    tokens, position = [], 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None:
            raise NotAllowed(f"query: unexpected {query[position:position + 10]!r} at position {position}")
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup or "", match.group(), position))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token], ids: Ids) -> None:
        self._tokens = tokens
        self._ids = ids
        self._next = 0
        self._filters = 0

    def query(self) -> Condition:
        stages = []
        while (token := self._peek()) is not None:
            if token.kind == "op" and token.text in _LINE_FILTERS:
                self._count_filter(token)
                self._next += 1
                stages.append(self._line_filter(token.text))
            elif token.kind == "op" and token.text == "|":
                self._next += 1
                stages.append(self._any_of())
            else:
                raise self._error("expected a line filter (|= != |~ !~) or | and a label filter")
        return _join(stages, "AND") if stages else Condition("1")

    def _line_filter(self, op: str) -> Condition:
        text = self._string()
        return Condition(_LINE_FILTERS[op], (text,), _compiled(text) if op in ("|~", "!~") else {})

    def _any_of(self) -> Condition:
        alternatives = [self._all_of()]
        while self._take("word", "or"):
            alternatives.append(self._all_of())
        return _join(alternatives, "OR")

    def _all_of(self) -> Condition:
        """Label matchers joined by `and`, which LogQL also writes as a comma or a space."""
        matchers = [self._matcher()]
        while self._take("word", "and") or self._take("op", ",") or self._next_is_label():
            matchers.append(self._matcher())
        return _join(matchers, "AND")

    def _next_is_label(self) -> bool:
        token = self._peek()
        return token is not None and token.kind == "word" and token.text != "or"

    def _matcher(self) -> Condition:
        token = self._peek()
        if token is None or token.kind != "word":
            raise self._error("expected a label name")
        if token.text not in LABELS:
            raise NotAllowed(f"query: unknown label {token.text!r} at position {token.position}; "
                             f"the labels are {', '.join(LABELS)}")
        self._count_filter(token)
        self._next += 1
        op = self._peek()
        if op is None or op.kind != "op" or op.text not in _LABEL_MATCHERS:
            raise self._error(f"expected = != =~ or !~ after {token.text}")
        self._next += 1
        value = self._string()
        regexes = _compiled(value) if op.text in ("=~", "!~") else {}
        if token.text in ID_LABELS:
            label = self._ids.label(token.text)
        elif token.text not in STORED_LABELS:
            label = "''"
        elif op.text in ("=", "==") and value:
            label = token.text  # as it is, so that SQLite can use its index (a request's lines)
        else:
            label = f"coalesce({token.text}, '')"
        return Condition(_LABEL_MATCHERS[op.text].format(label=label), (value,), regexes)

    def _count_filter(self, token: Token) -> None:
        self._filters += 1
        if self._filters > MAX_FILTERS:
            raise NotAllowed(f"query: more than {MAX_FILTERS} line and label filters (from position {token.position})")

    def _string(self) -> str:
        token = self._peek()
        if token is None or token.kind != "string":
            raise self._error('expected a string in double quotes or backticks')
        self._next += 1
        if token.text.startswith("`"):
            return token.text[1:-1]
        try:
            text = str(json.loads(token.text))
        except ValueError:
            raise NotAllowed(f"query: the string at position {token.position} has an unknown escape; "
                             "write regular expressions in backticks") from None
        problem = json_value_problem(text)
        if problem:
            raise NotAllowed(f"query: the string at position {token.position} {problem}")
        return text

    def _take(self, kind: str, text: str) -> bool:
        """Whether the next token is this one (`kind`: word or op), then passed."""
        token = self._peek()
        if token is not None and token.kind == kind and token.text == text:
            self._next += 1
            return True
        return False

    def _peek(self) -> Token | None:
        return self._tokens[self._next] if self._next < len(self._tokens) else None

    def _error(self, expected: str) -> NotAllowed:
        token = self._peek()
        where = f"{token.text!r} at position {token.position}" if token else "the end"
        return NotAllowed(f"query: {expected}, found {where}")


def _join(conditions: list[Condition], operator: str) -> Condition:
    if len(conditions) == 1:
        return conditions[0]
    return Condition(f" {operator} ".join(f"({c.sql})" for c in conditions),
                     tuple(param for c in conditions for param in c.params),
                     {pattern: regex for c in conditions for pattern, regex in c.regexes.items()})


def _literal(text: str) -> str:
    """`text` as an SQL string literal (a project may hold more names than SQLite binds parameters in one query)."""
    return "'" + text.replace("'", "''") + "'"


def _compiled(pattern: str) -> dict[str, Any]:
    """The pattern compiled by RE2, as Loki's LogQL compiles it (Go's regexp is RE2): matching takes time
    linear in the line whatever the pattern, where Python's `re` could take hours over one line with
    `(.*.*)*y`, holding the interpreter meanwhile (the whole server stopped)."""
    try:
        return {pattern: re2.compile(pattern, _RE2_OPTIONS)}
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if reason.startswith("pattern too large"):
            raise NotAllowed(f"query: {pattern!r} is too large a regular expression (RE2 compiles it past "
                             f"{REGEX_MEMORY // 1024} KiB); repeat less of it") from None
        raise NotAllowed(f"query: {pattern!r} is not a regular expression ({reason})") from None
