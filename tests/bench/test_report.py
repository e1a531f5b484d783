"""``bench/report.py`` renders the benchmark tables without ever overwriting the curated page.

docs/benchmarks.md holds hand-written comparisons and measurement notes beside the tables; a rendering
written over it (as ``make bench`` once did) dropped them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import report


def test_the_rendering_goes_to_its_own_file_and_leaves_the_page_alone(tmp_path: Path) -> None:
    page_before = report.PAGE.read_bytes()
    target = tmp_path / "report.md"

    assert report.main(["--output", str(target)]) == 0

    text = target.read_text()
    assert text.startswith("# Benchmarks\n")
    assert "## Diagnosis accuracy" in text
    assert report.PAGE.read_bytes() == page_before


def test_the_curated_page_is_refused_as_the_output(capsys: pytest.CaptureFixture[str]) -> None:
    page_before = report.PAGE.read_bytes()

    with pytest.raises(SystemExit) as exit_info:
        report.main(["--output", str(report.PAGE)])

    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "docs/benchmarks.md holds hand-written text" in err
    assert report.PAGE.read_bytes() == page_before
