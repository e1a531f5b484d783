"""Property test: the fused step (:func:`olevents.add_event`) and decoding, then indexing, agree.

Hypothesis builds streams of events around the real ones in ``examples/shadow/lineage.jsonl``: one
task seen with mixed event types, tries, map indexes and times in any order, duplicate keys, and
wrong types, unicode, lone surrogates and big values in every field the fast path reads. Both ways
must raise the same thing (type and text) for every line and leave the same index.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shadow_site import REAL_EVENTS
from test_olevents import _state  # (everything an index holds, comparable)

from qubinode_recovery_provider.shadow.lineage import LineageIndex
from qubinode_recovery_provider.shadow.olevents import add_event, decode_event

_REAL = [json.loads(line) for line in REAL_EVENTS.read_text().splitlines() if line.strip()]
_RUNS = sorted(
    {
        (e["run"]["facets"]["airflow"]["dag"]["dag_id"], e["run"]["facets"]["airflow"]["dagRun"]["run_id"])
        for e in _REAL
        if "airflow" in e["run"]["facets"]
    }
)

# the fields the fast path reads (and their neighbours), dotted from the event
_PATHS = [
    "eventType",
    "eventTime",
    "run",
    "run.runId",
    "run.facets",
    "run.facets.airflow",
    "run.facets.airflow.dag",
    "run.facets.airflow.dag.dag_id",
    "run.facets.airflow.dagRun",
    "run.facets.airflow.dagRun.dag_id",
    "run.facets.airflow.dagRun.run_id",
    "run.facets.airflow.dagRun.conf",
    "run.facets.airflow.task",
    "run.facets.airflow.task.task_id",
    "run.facets.airflow.taskInstance",
    "run.facets.airflow.taskInstance.try_number",
    "run.facets.airflow.taskInstance.map_index",
    "run.facets.errorMessage",
    "run.facets.errorMessage.message",
    "run.facets.parent",
    "run.facets.airflowDagRun",
    "job",
    "job.name",
    "job.facets",
    "job.facets.jobType",
    "job.facets.jobType.jobType",
    "job.facets.sourceCode",
    "job.facets.sourceCode.sourceCode",
    "outputs",
]

_TEXT = st.text(alphabet=st.characters(codec=None), max_size=12)  # lone surrogates included
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
    st.sampled_from(["", "TASK", "DAG", "START", "COMPLETE", "FAIL", "ABORT", "RUNNING", "2", "-1", "1e3"]),
)
_STATES = st.one_of(_SCALAR, st.sampled_from(["running", "defined", "Running "]))
_DECLARED = st.one_of(
    _TEXT,
    st.sampled_from(["web1", "lab/web1", "libvirt://lab/web1", "libvirt://[lab/web1", "a/b/c", " "]),
    st.fixed_dictionaries(
        {"name": st.one_of(_TEXT, st.just("web2")), "host": st.one_of(_SCALAR, st.just("lab"))},
        optional={"state": _STATES, "expected_state": _STATES, "task_id": _SCALAR},
    ),
)
_CONF = st.one_of(
    _SCALAR,
    st.builds(dict),
    st.fixed_dictionaries({"qubinode_vm": st.one_of(_DECLARED, st.lists(_DECLARED, max_size=3), _SCALAR)}),
    st.fixed_dictionaries({"qubinode_vm": st.fixed_dictionaries({"value": _DECLARED})}),
)
_OUTPUT = st.fixed_dictionaries(
    {
        "namespace": st.one_of(_SCALAR, st.sampled_from(["libvirt://lab", "LIBVIRT://Lab/", "libvirt://"])),
        "name": st.one_of(_SCALAR, st.sampled_from(["web1", "web%2F1", "db1"])),
    },
    optional={
        "facets": st.one_of(
            _SCALAR,
            st.fixed_dictionaries(
                {"libvirtDomain": st.one_of(_SCALAR, st.fixed_dictionaries({"expectedState": _STATES}))}
            ),
        )
    },
)
_VALUE = st.one_of(
    _SCALAR,
    st.builds(dict),
    st.builds(list),
    st.lists(_SCALAR, max_size=2),
    st.dictionaries(_TEXT, _SCALAR, max_size=2),
)


def _value_for(path: str) -> st.SearchStrategy[Any]:
    if path.endswith("conf"):
        return _CONF
    if path == "outputs":
        return st.one_of(_VALUE, st.lists(_OUTPUT, max_size=3))
    return _VALUE


@st.composite
def _change(draw: st.DrawFn) -> tuple[str, str, Any]:
    path = draw(st.sampled_from(_PATHS))
    action = draw(st.sampled_from(["set", "set", "drop"]))
    return action, path, draw(_value_for(path)) if action == "set" else None


def _apply(event: dict[str, Any], action: str, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = event
    for part in parents:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            return
        node = node[part]
    if action == "drop":
        node.pop(last, None)
    else:
        node[last] = value


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    event = copy.deepcopy(draw(st.sampled_from(_REAL)))
    airflow = event["run"]["facets"].get("airflow")
    if airflow is not None and draw(st.booleans()):  # one task of one run, its events in any order
        dag_id, run_id = draw(st.sampled_from(_RUNS))
        airflow["dag"]["dag_id"] = airflow["dagRun"]["dag_id"] = dag_id
        airflow["dagRun"]["run_id"] = run_id
        airflow["task"]["task_id"] = draw(st.sampled_from(["t", "u"]))
        event["eventType"] = draw(st.sampled_from(["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"]))
        event["eventTime"] = draw(st.sampled_from(["", "2026-01-01T00:00:00", "2026-01-01T00:00:01", "Z"]))
        instance = airflow.setdefault("taskInstance", {})
        instance["try_number"] = draw(st.one_of(st.integers(-1, 3), st.sampled_from(["2", None, 1.5, True])))
        instance["map_index"] = draw(st.one_of(st.integers(-1, 2), st.sampled_from(["1", None, False])))
    for action, path, value in draw(st.lists(_change(), max_size=3)):
        _apply(event, action, path, value)
    text = json.dumps(event, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 9)) == 0:  # a duplicate key: the last one wins in both decoders
        text = text.replace('"eventType": ', '"eventType": "FAIL", "eventType": ', 1)
    try:
        return text.encode("utf-8", "surrogatepass") if draw(st.booleans()) else text.encode()
    except UnicodeEncodeError:  # a lone surrogate, not escaped: invalid UTF-8 bytes then
        return text.encode("utf-8", "surrogatepass")


def _outcome(call: Any) -> str | None:
    try:
        call()
    except Exception as exc:  # the type too: only EventError is a malformed line to the reader
        return f"{type(exc).__name__}: {exc}"
    return None


def _old(line: bytes, index: LineageIndex) -> str | None:
    def call() -> None:
        record = decode_event(line)
        if record is not None:
            index.add(record)

    return _outcome(call)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(lines=st.lists(_line(), min_size=1, max_size=8), wanted=st.sampled_from(["all", "one", "none"]))
def test_the_fused_step_and_the_general_path_agree_on_any_stream(lines: list[bytes], wanted: str) -> None:
    keep = {"all": None, "one": set(_RUNS[:1]), "none": set()}[wanted]
    old, fused = LineageIndex(keep), LineageIndex(keep)
    for line in lines:
        expected = _old(line, old)
        assert _outcome(lambda line=line: add_event(line, fused)) == expected, line[:200]
        assert expected is None or expected.startswith("EventError"), expected  # never a crash
    assert _state(fused) == _state(old)
