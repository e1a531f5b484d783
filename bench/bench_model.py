"""Cost of the learned text model: its file, loading it, and one verdict.

    python bench/bench_model.py        # writes bench/results/model.json

- file: the shipped ``text_model.bin.gz`` (bytes, buckets);
- load: :meth:`TextModel.load` (read, gunzip, arrays, bucket index), median of 20, in this process
  (the analyzer loads it once per process, only when the patterns are not confident);
- import: the modules the model adds to a process that has the analyzer already (none beyond it);
- verdict: :func:`model_lines` and :meth:`TextModel.predict` on each training text (median and p95
  microseconds per item), and on a 1 MB log (the model reads at most its last 16 KiB).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import ROOT, load
from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
from qubinode_recovery_provider.diagnosis.model import MODEL_FILE, TextModel, model_lines

RESULTS = ROOT / "bench" / "results"


def _timed(func: object, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    loads = _timed(TextModel.load, 20)
    model = TextModel.load()
    analyzer = FailureAnalyzer(PatternLibrary.load(), use_llm=False, text_model=False)
    per_item = []
    for item in load("train"):
        scan = analyzer.matcher.scan_text(item["text"])
        start = time.perf_counter()
        model.predict(model_lines(scan))
        per_item.append(time.perf_counter() - start)
    log = "\n".join(
        f"2026-12-03T10:00:{i % 60:02d} INFO step {i} ok: [hypervisor] => vm-{i}" for i in range(16000)
    )
    log = log + "\nsudo: a password is required\n"
    scan = analyzer.matcher.scan_text(log)
    big = _timed(lambda: model.predict(model_lines(scan)), 10)
    per_item.sort()
    result = {
        "file_bytes": MODEL_FILE.stat().st_size,
        "buckets": len(model._row),
        "params": model.header.get("params"),
        "load_ms_median": round(statistics.median(loads) * 1000, 2),
        "load_ms_min": round(min(loads) * 1000, 2),
        "verdict_us_median": round(statistics.median(per_item) * 1e6),
        "verdict_us_p95": round(per_item[int(0.95 * (len(per_item) - 1))] * 1e6),
        "items": len(per_item),
        "verdict_1mb_log_ms_median": round(statistics.median(big) * 1000, 2),
        "log_bytes": len(log.encode()),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "model.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
