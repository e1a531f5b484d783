"""The README's demo: diagnose real failures on the embedded defaults and show what the provider says.

    make demo                 # or: .venv/bin/python scripts/demo.py

Every sample in ``examples/failures.jsonl`` is text a real tool printed, from the public issue named
with it. The demo runs the analyzer with the shipped pattern library (no network, no Airflow needed),
prints one report per failure, then the same batch through the CLI contract as JSON lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qubinode_recovery_provider.cli.render import render_diagnosis  # noqa: E402
from qubinode_recovery_provider.diagnosis import FailureAnalyzer  # noqa: E402

SAMPLES = ROOT / "examples" / "failures.jsonl"


def main() -> int:
    analyzer = FailureAnalyzer()
    samples = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(
        f"qubinode-recovery demo: {len(samples)} real failures, {len(analyzer.library)} known-error patterns\n"
    )
    for sample in samples:
        lines = sample["text"].splitlines()
        print("=" * 100)
        print(f"{sample['id']}  ({len(lines)} log lines, from {sample['source']})")
        print("-" * 100)
        print(render_diagnosis(analyzer.analyze(sample["text"], diagnosis_id=sample["id"])))
    print("=" * 100)
    print("The same batch through the CLI (qubinode-recovery diagnose --batch examples/failures.jsonl):\n")
    cli = Path(sys.executable).with_name("qubinode-recovery")
    out = subprocess.run(
        [str(cli), "diagnose", "--batch", str(SAMPLES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    for line in out.splitlines():
        row = json.loads(line)
        print(
            f"  {row['id']:<18} {row['root_cause']:<20} confidence={row['confidence']:.2f} "
            f"retryable={json.dumps(row['retryable']):<5} fingerprint={row['fingerprint']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
