from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qubinode_recovery_provider.diagnosis.literals import required_literals


@pytest.mark.parametrize(
    ("regex", "expected"),
    [
        ("No space left on device", {"no space left on device"}),
        ("(CPU virtualization|KVM not available)", {"cpu virtualization", "kvm not available"}),
        ("libvirtd.*not running", {"not running"}),
        (r"fatal: \[[^\]]+\]: UNREACHABLE!", {"]: unreachable!"}),
        (r"[Ee]rror: (?:foo|barbaz)+ x", {"error: "}),
        (r"\bOut of memory\b", {"out of memory"}),
        (r"(?:Permission denied)+", {"permission denied"}),
    ],
)
def test_required_literals_are_derived(regex: str, expected: set[str]) -> None:
    assert required_literals(regex) == expected


@pytest.mark.parametrize("regex", [r"(a|b)", r".*", r"(?:foo)?", r"x*", r"(foo|.*)"])
def test_no_literal_when_none_is_required(regex: str) -> None:
    result = required_literals(regex)
    assert result is None or min(len(s) for s in result) < 4


def test_invalid_regex_gives_none() -> None:
    assert required_literals("(unclosed") is None


WORDS = st.sampled_from(["disk", "full", "error", "kvm", "timeout", "denied", "pool"])


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=4), st.lists(WORDS, min_size=1, max_size=4), st.text(max_size=20))
def test_every_match_contains_a_required_literal(left: list[str], right: list[str], noise: str) -> None:
    regex = f"(?:{' '.join(left)}|{' .*'.join(right)})"
    literals = required_literals(regex)
    for candidate in (" ".join(left), " x".join(right), noise + " ".join(left).upper() + noise):
        match = re.search(regex, candidate, re.IGNORECASE)
        if match and literals:
            assert any(lit in match.group(0).lower() for lit in literals)
