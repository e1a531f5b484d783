"""Bad input to every subcommand: exit 2, exactly one line on stderr, never a traceback, never a hang.

Hostile input included: nesting 100 000 levels deep, integers of thousands of digits, NaN and
Infinity, a 10 MB single JSON line, binary files, a truncated runs file, try numbers and durations
that would take unbounded memory or time if they were used.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_process import run_cli

from qubinode_recovery_provider import config
from qubinode_recovery_provider.cli import main

DEEP = 100_000
HUGE_INT = "9" * 5000
TRY_TOO_BIG = "99999999999999999999"


pytestmark = pytest.mark.usefixtures("isolated_config")


def _runs_page_nested(depth: int) -> str:
    """A valid REST page whose run's conf nests ``depth`` levels in all (the page, its list, the run)."""
    inner = "[" * (depth - 3) + "]" * (depth - 3)
    return '{"dag_runs": [{"dag_id": "d", "dag_run_id": "r", "state": "success", "conf": ' + inner + "}]}"


def _write(path: Path, content: str | bytes) -> str:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def _deep_record() -> str:
    return '{"text": "x", "id": ' + "[" * DEEP + "]" * DEEP + "}\n"


# Each case: (argv builder given a scratch directory, a fragment the one-line reason must contain).
Case = tuple[Callable[[Path], list[str]], str]

CASES: dict[str, Case] = {
    # diagnose --batch
    "batch nested 100k deep": (
        lambda d: ["diagnose", "--batch", _write(d / "b.jsonl", _deep_record())],
        "b.jsonl:1: JSON nested deeper than 64 levels",
    ),
    "batch nested 65 deep": (
        lambda d: [
            "diagnose",
            "--batch",
            _write(d / "b.jsonl", '{"text": "x", "id": ' + "[" * 64 + "]" * 64 + "}"),
        ],
        "b.jsonl:1: JSON nested deeper than 64 levels",
    ),
    "batch huge integer": (
        lambda d: ["diagnose", "--batch", _write(d / "b.jsonl", '{"text": "x", "id": ' + HUGE_INT + "}\n")],
        "b.jsonl:1: integer out of range",
    ),
    "batch integer past 64 bits": (
        lambda d: [
            "diagnose",
            "--batch",
            _write(d / "b.jsonl", '{"text": "x", "id": 9223372036854775808}\n'),
        ],
        "integer out of range",
    ),
    "batch NaN": (
        lambda d: ["diagnose", "--batch", _write(d / "b.jsonl", '{"text": "x", "id": NaN}\n')],
        "NaN is not a number JSON allows",
    ),
    "batch 1e999": (
        lambda d: ["diagnose", "--batch", _write(d / "b.jsonl", '{"text": "x", "id": 1e999}\n')],
        "number out of range",
    ),
    "batch empty file": (lambda d: ["diagnose", "--batch", _write(d / "b.jsonl", "")], "no records"),
    "batch only blank lines": (
        lambda d: ["diagnose", "--batch", _write(d / "b.jsonl", "\n \n\n")],
        "no records",
    ),
    "batch truncated last line": (
        lambda d: ["diagnose", "--batch", _write(d / "b.jsonl", '{"text": "a"}\n{"text": "b"}\n{"text": "c')],
        "b.jsonl:3: invalid JSON: Unterminated string",
    ),
    "batch 10 MB single line": (
        lambda d: ["diagnose", "--batch", _write(d / "b.jsonl", json.dumps({"text": "x" * 10_000_000}))],
        "b.jsonl:1: line longer than 8 MiB",
    ),
    "batch binary file": (
        lambda d: ["diagnose", "--batch", _write(d / "b.jsonl", bytes(range(256)) * 64)],
        "b.jsonl:1: invalid JSON",
    ),
    "batch directory": (lambda d: ["diagnose", "--batch", str(d)], "is a directory, not a file"),
    "batch unknown file": (lambda d: ["diagnose", "--batch", str(d / "nope.jsonl")], "cannot read"),
    # diagnose --log-file / --error
    "log file unknown": (lambda d: ["diagnose", "--log-file", str(d / "nope.log")], "does not exist"),
    "log file directory": (lambda d: ["diagnose", "--log-file", str(d)], "is a directory, not a file"),
    "log file gzip": (
        lambda d: ["diagnose", "--log-file", _write(d / "x.log.gz", gzip.compress(b"\0" * 100 + b"error\n"))],
        "looks binary",
    ),
    "empty error text": (lambda d: ["diagnose", "--error", " \n "], "--error is empty"),
    # plan
    "analysis nested 100k deep": (
        lambda d: ["plan", "--analysis-file", _write(d / "a.json", "[" * DEEP + "]" * DEEP)],
        "a.json: JSON nested deeper than 64 levels (line 1, column 65)",
    ),
    "analysis deep on line 3": (
        lambda d: [
            "plan",
            "--analysis-file",
            _write(d / "a.json", '{\n"x":\n  ' + "[" * 70 + "]" * 70 + "}"),
        ],
        "JSON nested deeper than 64 levels (line 3, column 66)",
    ),
    "analysis huge integer": (
        lambda d: ["plan", "--analysis-file", _write(d / "a.json", '{"confidence": ' + HUGE_INT + "}")],
        "integer out of range",
    ),
    "analysis Infinity": (
        lambda d: ["plan", "--analysis-file", _write(d / "a.json", '{"confidence": -Infinity}')],
        "-Infinity is not a number JSON allows",
    ),
    "analysis 10 MB": (
        lambda d: [
            "plan",
            "--analysis-file",
            _write(d / "a.json", json.dumps({"summary": "y" * 10_000_000})),
        ],
        "larger than 8 MiB",
    ),
    "analysis binary": (
        lambda d: ["plan", "--analysis-file", _write(d / "a.json", bytes(range(256)) * 16)],
        "invalid JSON",
    ),
    "analysis directory": (lambda d: ["plan", "--analysis-file", str(d)], "is a directory, not a file"),
    "try number 10**20": (lambda d: ["plan", "--error", "x", "--try-number", TRY_TOO_BIG], "from 1 to 10000"),
    "try number 5000 digits": (
        lambda d: ["plan", "--error", "x", "--try-number", HUGE_INT],
        "from 1 to 10000",
    ),
    "try number negative": (lambda d: ["plan", "--error", "x", "--try-number", "-1"], "from 1 to 10000"),
    "try number zero": (lambda d: ["plan", "--error", "x", "--try-number", "0"], "from 1 to 10000"),
    "try number float": (lambda d: ["plan", "--error", "x", "--try-number", "1e3"], "not a whole number"),
    "timeout inf": (lambda d: ["plan", "--error", "x", "--execution-timeout", "inf"], "finite"),
    "timeout nan": (lambda d: ["plan", "--error", "x", "--execution-timeout", "nan"], "finite"),
    "timeout 1e400": (lambda d: ["plan", "--error", "x", "--execution-timeout", "1e400"], "finite"),
    "timeout negative": (lambda d: ["plan", "--error", "x", "--execution-timeout", "-5"], "more than 0"),
    "timeout zero": (lambda d: ["plan", "--error", "x", "--execution-timeout", "0"], "more than 0"),
    "timeout a century": (lambda d: ["plan", "--error", "x", "--execution-timeout", "3.2e9"], "at most"),
    "timeout text": (lambda d: ["plan", "--error", "x", "--execution-timeout", "soon"], "not a number"),
    # incidents
    "incident id 10**23": (lambda d: ["incidents", "show", str(10**23)], "incident id too large"),
    "incident id 2**63": (lambda d: ["incidents", "show", str(2**63)], "incident id too large"),
    "incident ref with spaces": (lambda d: ["incidents", "show", "a b"], "not an incident id or fingerprint"),
    "incident ref unicode digits": (
        lambda d: ["incidents", "show", "²³"],
        "not an incident id or fingerprint",
    ),
    "incident ref too long": (
        lambda d: ["incidents", "show", "f" * 129],
        "not an incident id or fingerprint",
    ),
    "incident limit 10**23": (lambda d: ["incidents", "list", "--limit", str(10**23)], "from 1 to 10000"),
    "incident limit zero": (lambda d: ["incidents", "list", "--limit", "0"], "--limit"),
    # scan
    "since 99999999999d": (lambda d: ["scan", "--since", "99999999999d"], "at most 7320 days"),
    "since 10**400 minutes": (lambda d: ["scan", "--since", "1" * 400], "not a duration or a timestamp"),
    "since inf": (lambda d: ["scan", "--since", "inf"], "not a duration or a timestamp"),
    "since nan": (lambda d: ["scan", "--since", "nan"], "not a duration or a timestamp"),
    "since negative": (lambda d: ["scan", "--since=-5h"], "not a duration or a timestamp"),
    "since zero": (lambda d: ["scan", "--since", "0s"], "more than 0"),
    "until 9999999999d": (lambda d: ["scan", "--until", "9999999999d"], "at most 7320 days"),
    "since timestamp out of range": (
        lambda d: ["scan", "--since", "0001-01-01T00:00:00+05:00"],
        "timestamp out of range",
    ),
    "runs file truncated document": (
        lambda d: [
            "scan",
            "--runs-file",
            _write(
                d / "r.json", '{"dag_runs": [\n  {"dag_id": "a", "state": "success",\n   "end_date": "2025-'
            ),
        ],
        "invalid JSON: Unterminated string starting at (line 3",
    ),
    "runs file truncated JSON lines": (
        lambda d: [
            "scan",
            "--runs-file",
            _write(d / "r.jsonl", '{"dag_runs": []}\n{"task_instances": []}\n\n{"dag_runs": [{"dag_id"'),
        ],
        "r.jsonl:4: invalid JSON",
    ),
    "runs file nested 100k deep": (
        lambda d: ["scan", "--runs-file", _write(d / "r.json", "[" * DEEP + "]" * DEEP)],
        "JSON nested deeper than 256 levels (line 1, column 257)",
    ),
    "runs file a REST page nested 257 deep": (
        lambda d: ["scan", "--runs-file", _write(d / "r.json", _runs_page_nested(257))],
        "JSON nested deeper than 256 levels (line 1, column 331)",
    ),
    "runs file empty": (lambda d: ["scan", "--runs-file", _write(d / "r.json", "\n")], "is empty"),
    "runs file binary": (
        lambda d: ["scan", "--runs-file", _write(d / "r.json", b"\x1f\x8b\x08\xff\xfe")],
        "not UTF-8 text",
    ),
    "runs file directory": (lambda d: ["scan", "--runs-file", str(d)], "is a directory, not a file"),
    "runs file of numbers": (
        lambda d: ["scan", "--runs-file", _write(d / "r.json", '{"dag_runs": [5]}')],
        "'dag_runs' must be a list of JSON objects",
    ),
    "runs file null": (lambda d: ["scan", "--runs-file", _write(d / "r.json", "null")], "got NoneType"),
    "record into a bad ledger URL": (
        lambda d: ["scan", "--runs-file", _write(d / "r.json", "[]"), "--record", "--ledger", "garbage"],
        "cannot open the ledger: not a database URL",
    ),
    "libvirt timeout inf": (lambda d: ["scan", "--libvirt-timeout", "inf"], "finite"),
    "libvirt timeout an hour": (lambda d: ["scan", "--libvirt-timeout", "3600"], "at most 600"),
    "http timeout negative": (lambda d: ["scan", "--http-timeout", "-1"], "more than 0"),
    "lineage workers zero": (lambda d: ["scan", "--lineage-workers", "0"], "from 1 to 64"),
    "lineage workers 10**30": (lambda d: ["scan", "--lineage-workers", str(10**30)], "from 1 to 64"),
    "airflow url port out of range": (
        lambda d: ["scan", "--airflow-url", "http://host:99999/"],
        "--airflow-url must be an http(s) URL",
    ),
    "marquez url not http": (
        lambda d: ["scan", "--runs-file", _write(d / "r.json", "[]"), "--marquez-url", "file:///etc"],
        "--marquez-url must be an http(s) URL",
    ),
    # patterns, and the parser itself
    "suggest min size 10**30": (
        lambda d: ["patterns", "suggest", "--batch", "x", "--min-size", str(10**30)],
        "from 1 to 1000000",
    ),
    "suggest batch nested deep": (
        lambda d: ["patterns", "suggest", "--batch", _write(d / "b.jsonl", _deep_record())],
        "JSON nested deeper than 64 levels",
    ),
    "check pack directory": (lambda d: ["patterns", "check", "--pack", str(d)], "is not a file"),
    "unknown subcommand": (lambda d: ["frobnicate"], "invalid choice"),
    "unknown flag": (lambda d: ["diagnose", "--error", "x", "--frobnicate"], "unrecognized arguments"),
    "missing source": (lambda d: ["diagnose"], "one of the arguments"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_exit_2_with_one_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, fragment = CASES[name]
    argv = build(tmp_path)

    code = main(argv)
    out, err = capsys.readouterr()

    assert code == 2, (out, err)
    assert err.count("\n") == 1, err
    assert err.startswith("qubinode-recovery")
    assert ": error: " in err
    assert "Traceback" not in err
    assert fragment in err
    assert len(err) < 600  # the reason never echoes a huge input back
    assert out == ""


def test_a_connection_timeout_from_the_environment_is_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LIBVIRT_CONN_IDS", "libvirt_lab")
    monkeypatch.setenv(
        "AIRFLOW_CONN_LIBVIRT_LAB", json.dumps({"conn_type": "libvirt", "extra": {"timeout": "inf"}})
    )
    config.clear_cache()
    runs = _write(tmp_path / "r.json", json.dumps({"dag_runs": []}))

    assert main(["scan", "--runs-file", runs]) == 2
    err = capsys.readouterr().err
    assert err == (
        "qubinode-recovery: error: AIRFLOW_CONN_LIBVIRT_LAB: extra timeout must be more than 0 and at "
        "most 600 seconds, got 'inf'\n"
    )


def test_a_lineage_line_nested_too_deeply_is_a_counted_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Like any other malformed lineage line: skipped, named with its line number, counted."""
    runs = _write(tmp_path / "r.json", "[]")
    lineage = _write(tmp_path / "events.jsonl", "[" * DEEP + "]" * DEEP + "\n")

    code = main(["scan", "--runs-file", runs, "--lineage-file", lineage, "--libvirt-uri", "test:///default"])
    err = capsys.readouterr().err

    assert code == 0
    assert "Traceback" not in err
    assert f"{lineage}:1: not an OpenLineage event (JSON nested too deeply)" in err
    assert "lineage file: 1 malformed lines skipped" in err


def test_values_at_the_bounds_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--error", "Operation timed out", "--json", "--try-number", "10000"])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    deep_enough = '{"text": "No space left on device", "extra": ' + "[" * 63 + "]" * 63 + "}\n"
    assert main(["diagnose", "--batch", _write(tmp_path / "ok.jsonl", deep_enough)]) == 0
    assert json.loads(capsys.readouterr().out)["root_cause"] == "storage"
    assert main(["incidents", "show", str(2**63 - 1)]) == 1  # a valid id, just not in the (empty) ledger
    assert "no incident" in capsys.readouterr().err


@pytest.mark.parametrize("depth", [200, 250, 256])
def test_a_runs_file_at_most_256_deep_is_accepted(tmp_path: Path, depth: int) -> None:
    """The fast check (msgspec) hands files near the bound to the exact one, which accepts them."""
    from qubinode_recovery_provider.cli.scan import check_runs_file

    check_runs_file(_write(tmp_path / "r.json", _runs_page_nested(depth)))


def test_the_help_still_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--help"]) == 0
    assert "--since DURATION" in capsys.readouterr().out


# --- the installed command, as a user runs it ------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "stdin", "fragment"),
    [
        (["diagnose", "--batch", "-"], _deep_record().encode(), "-:1: JSON nested deeper than 64 levels"),
        (["plan", "--analysis-file", "-"], ("[" * DEEP).encode(), "JSON nested deeper than 64 levels"),
        (["plan", "--error", "x", "--try-number", TRY_TOO_BIG], b"", "from 1 to 10000"),
        (["scan", "--since", "99999999999d"], b"", "at most 7320 days"),
        (["incidents", "show", str(10**23)], b"", "incident id too large"),
    ],
)
def test_the_command_reports_bad_input_in_one_line(argv: list[str], stdin: bytes, fragment: str) -> None:
    result = run_cli(argv, stdin_chunks=[stdin], timeout=60)

    assert result.code == 2, result.err
    assert result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
    assert fragment in result.err
