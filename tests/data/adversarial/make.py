"""Hostile inputs for the analyzer, generated (the big ones are never committed).

Each function returns one input; ``python tests/data/adversarial/make.py [DIR]`` writes the small ones
(under 1 MB each) to ``DIR`` (default: ``tests/data/adversarial/generated``) for reading by eye. The
tests and ``bench/bench_analyzer.py`` import this file and build every input when they run.

- :func:`hits_line`: one line of ``size`` bytes full of pattern hits (the chunk scan used to rescan
  the line for every hit: 4 MB took minutes).
- :func:`many_patterns_line`: one line holding an example of every pattern of a library, repeated.
- :func:`jwt_line`: an 80 KB JWT-shaped token (base64url with dots, no spaces).
- :func:`ansible_result_line`: one ``fatal: [...]: FAILED! => {...}`` line of ``size`` bytes with
  many ``results`` items (a loop over hosts or packages).
- :func:`deep_json_line`: an Airflow JSON log record nested ``depth`` levels deep.
- :func:`deep_ansible_line`: an Ansible result whose JSON is nested ``depth`` levels deep.
- :func:`redos_pack` / :func:`redos_line`: the classic ``(a+)+$`` in a user pack, and the line
  that makes a backtracking engine explode on it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

HIT = "error: No space left on device; "


def hits_line(size: int = 4 * 1024 * 1024, unit: str = HIT) -> str:
    """One line of about ``size`` characters that is nothing but pattern hits.

    :param size: the length of the line.
    :param unit: the hit that is repeated.
    """
    return (unit * (size // len(unit) + 1))[:size]


def many_patterns_line(examples: Iterable[str], size: int = 1024 * 1024) -> str:
    """One line of about ``size`` characters holding every example text, again and again.

    :param examples: example texts (e.g. the first example of every shipped pattern).
    :param size: the length of the line.
    """
    unit = " | ".join(" ".join(text.split()) for text in examples) + " | "
    return (unit * (size // len(unit) + 1))[:size]


def jwt_line(size: int = 80 * 1024) -> str:
    """A log line carrying a JWT-shaped token of about ``size`` characters (the canary is fake).

    :param size: the length of the token.
    """
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    header = "eyJhbGciOiJIUzI1NiJ9."
    half = max(1, (size - len(header) - 1) // 2)
    body = "".join(alphabet[(i * 7919) % len(alphabet)] for i in range(2 * half))
    token = f"{header}{body[:half]}.{body[half:]}"
    return f"ERROR - Authorization: Bearer {token} rejected: 401 Unauthorized"


def ansible_result_line(size: int = 2_700_000) -> str:
    """A ``fatal: [...]: FAILED! => {...}`` line of about ``size`` characters: a loop whose every
    item failed with a message and a stdout of retried connections (hits everywhere on one line).

    :param size: the length of the line.
    """
    item = {
        "failed": True,
        "item": "vm-0",
        "msg": "Failed to create VM: error: No space left on device",
        "stdout": "retrying: ssh: connect to host 10.0.0.7 port 22: Connection timed out\n" * 8,
        "stderr": "qemu-img: error writing: No space left on device",
        "rc": 1,
    }
    one = len(json.dumps(item)) + 2
    results = [{**item, "item": f"vm-{n}"} for n in range(size // one + 1)]
    blob = {"changed": False, "msg": "One or more items failed", "results": results}
    return "fatal: [hypervisor-1]: FAILED! => " + json.dumps(blob)


def deep_json_line(depth: int = 10_000) -> str:
    """An Airflow 3 JSON log record whose ``event`` value is nested ``depth`` lists deep.

    :param depth: the nesting depth.
    """
    inner = "[" * depth + '"No space left on device"' + "]" * depth
    return '{"level": "error", "event": ' + inner + ', "error_detail": ' + inner + "}"


def deep_ansible_line(depth: int = 10_000) -> str:
    """An Ansible ``FAILED!`` result whose JSON is nested ``depth`` objects deep.

    :param depth: the nesting depth.
    """
    inner = '{"a": ' * depth + '"x"' + "}" * depth
    return (
        'fatal: [h1]: FAILED! => {"msg": "No space left on device", "results": [{"failed": true, '
        f'"msg": "deep", "nested": {inner}}}]}}'
    )


def redos_pack() -> dict[str, object]:
    """A user pack whose regex is the classic catastrophic-backtracking ``(a+)+$``."""
    return {
        "pack": "redos",
        "schema_version": 1,
        "patterns": [
            {
                "id": "redos_001",
                "regex": "Failure: (a+)+$",
                "category": "configuration",
                "severity": "high",
                "retryable": False,
                "description": "A pattern written without thinking about backtracking",
                "examples": [{"text": "Failure: aaaa", "source": "adversarial test"}],
                "near_misses": [{"text": "Failure: bbbb", "source": "adversarial test"}],
            }
        ],
    }


def redos_line(length: int = 64) -> str:
    """The line that makes ``(a+)+$`` backtrack for ever in Python ``re``: a run of ``a`` that fails
    at ``!``, then a short run that matches at the end of the line, so the whole-regex prefilter lets
    the line through and a backtracking engine tries ``2**length`` ways to split the first run.

    :param length: how many ``a`` in the first run.
    """
    return "Failure: " + "a" * length + "! Failure: a"


def write_small(directory: Path) -> list[Path]:
    """Write the inputs under 1 MB to ``directory``; return their paths.

    :param directory: where to write.
    """
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "hits_line_256k.log": hits_line(256 * 1024),
        "jwt_line_80k.log": jwt_line(),
        "ansible_result_512k.log": ansible_result_line(512 * 1024),
        "deep_json_10k.log": deep_json_line(),
        "deep_ansible_10k.log": deep_ansible_line(),
        "redos_line_100k.log": redos_line(),
        "redos_pack.yaml": yaml.safe_dump(redos_pack(), sort_keys=False),
    }
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text + ("" if name.endswith(".yaml") else "\n"), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "generated"
    for written_path in write_small(target):
        print(written_path, written_path.stat().st_size)
