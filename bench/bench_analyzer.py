"""Speed and memory of the analyzer against the reference implementation's approach.

    python bench/bench_analyzer.py            # every section, writes bench/results/analyzer.json
    python bench/bench_analyzer.py --quick    # fewer repeats
    python bench/bench_analyzer.py --sections sizes,adversarial,large_pack   # some sections only

The baseline is the reference implementation's matching: its ten regexes, lower-cased, each run with
``re.search`` over the lower-cased text, one after the other. The analyzer runs end to end (scan,
weighing, fingerprint) with the full shipped library. Both run in the same process on the same inputs:
a 1 KB error message and noisy logs of 100 KB, 1 MB and 10 MB whose real cause sits two thirds of the
way down, followed by a timeout. For the choice of matching technique the benchmark also times, over
the full library: every regex over the whole text, one combined alternation, and a google-re2 set.
Memory on a 100 MB log is the peak RSS of a child process that streams the file.

Two more sections: ``adversarial`` times the hostile inputs of ``tests/data/adversarial/make.py`` (a
4 MB line full of hits, a 4 MB line holding every pattern's example, an 80 KB JWT, a 2.7 MB one-line
Ansible loop result, JSON nested 10,000 deep, the ``(a+)+$`` user pack and its stressor); the tests hold
them to a 2 s bound, this reports the actual times. ``large_pack`` generates a pack of 20,000 patterns
and measures, in child processes, its first load (empty cache: YAML, validation, RE2 verification, the
Hyperscan compile) and a later load (the verified pack and the database come from the cache): seconds,
peak RSS and the time of one analysis.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary

RESULTS = Path(__file__).resolve().parent / "results"

# The reference implementation's ten patterns, as it runs them (lower-cased regex on lower-cased text).
SEED_REGEXES = [
    r"(CPU virtualization|KVM not available|nested virtualization)",
    r"(libvirtd.*not running|Failed to connect to system bus)",
    r"(No route to host|Network is unreachable|Temporary failure in name resolution)",
    r"(Failed to pull image|registry.*not reachable|authentication required)",
    r"(No space left on device|Disk quota exceeded|out of disk space)",
    r"(Permission denied|authentication failed|Invalid credentials|Unauthorized)",
    r"(vault.*connection|Failed to unseal vault|vault.*decrypt)",
    r"(timeout|timed out|connection timeout|read timeout)",
    r"(airflow.*scheduler|airflow.*worker|DAG.*import|airflow.*database)",
    r"(kcli.*error|VM.*already exists|image.*not found)",
]

NOISE = [
    "TASK [kcli_vm : Render the VM profile] *********************************************",
    "ok: [hypervisor-{n}] => (item=vm-{n})",
    "changed: [hypervisor-{n}]",
    "[2026-11-02T10:{m:02d}:{s:02d}.{n:03d}+0000] {{taskinstance.py:1234}} INFO - Dependencies all met",
    "Deploying vm vm-{n} from profile rhel9 on pool default",
    "Copying blob sha256:{h} done",
    "Writing manifest to image destination",
    "Storing signatures",
    "DEBUG: libvirt: connecting to qemu:///system (attempt {n})",
    "PLAY RECAP *****************************************************************************",
    "hypervisor-{n}               : ok={n}   changed=2    unreachable=0    failed=0    skipped=3",
    "Getting image source signatures",
    "Trying to pull quay.io/qubinode/airflow:{n}...",
    "INFO  Waiting up to 20m0s for the Kubernetes API at https://api.lab.example.com:6443...",
]
CAUSE = (
    'fatal: [hypervisor-7]: FAILED! => {"changed": false, "msg": "Failed to create VM: '
    "error: Failed to start domain 'vm-7'\\nerror: No space left on device\"}"
)
SYMPTOM = "airflow.exceptions.AirflowException: SSH operator error: exit status = 1 (timed out)"
MESSAGE_1KB = (
    "[2026-11-02, 10:14:03 UTC] {subprocess.py:93} INFO - Deploying vm vm-7 from profile rhel9\n"
    "[2026-11-02, 10:14:04 UTC] {subprocess.py:93} INFO - Using 192.168.122.253 as api_ip\n"
    "Traceback (most recent call last):\n"
    '  File "/usr/lib/python3.11/site-packages/kvirt/config.py", line 1047, in create_vm\n'
    "    result = k.create(name=name, profile=profile, overrides=overrides)\n"
    '  File "/usr/lib/python3.11/site-packages/kvirt/providers/kvm/__init__.py", line 1301, in create\n'
    "    vm = conn.defineXML(vmxml)\n"
    '  File "/usr/lib64/python3.11/site-packages/libvirt.py", line 4481, in defineXML\n'
    "    raise libvirtError('virDomainDefineXML() failed')\n"
    "libvirt.libvirtError: Cannot access storage file '/var/lib/libvirt/images/vm-7.qcow2' "
    "(as uid:107, gid:107): No such file or directory\n"
    "[2026-11-02, 10:14:05 UTC] {taskinstance.py:3311} ERROR - Task failed with exception\n"
    "airflow.exceptions.AirflowException: Bash command failed. "
    "The command returned a non-zero exit code 1.\n"
    "[2026-11-02, 10:14:05 UTC] {taskinstance.py:1226} INFO - Marking task as UP_FOR_RETRY.\n"
)


def noisy_log(size: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines: list[str] = []
    total, cause_at = 0, int(size * 2 / 3)
    while total < size:
        line = rng.choice(NOISE).format(
            n=rng.randrange(1000), m=rng.randrange(60), s=rng.randrange(60), h=f"{rng.getrandbits(64):016x}"
        )
        if cause_at and total >= cause_at:
            line, cause_at = CAUSE, 0
        lines.append(line)
        total += len(line) + 1
    lines.append(SYMPTOM)
    return "\n".join(lines) + "\n"


def naive_baseline(text: str) -> list[str]:
    lowered = text.lower()
    return [rx for rx in SEED_REGEXES if re.search(rx.lower(), lowered)]


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def alternatives(library: PatternLibrary, text: str, repeats: int) -> dict[str, float]:
    """Median seconds of other matching techniques over the full library, for the technique choice."""
    from qubinode_recovery_provider.diagnosis.matcher import Matcher

    regexes = [re.compile(cp.pattern.regex, re.IGNORECASE if cp.pattern.ignore_case else 0) for cp in library]
    matchers = {kind: Matcher(library.patterns, index_kind=kind) for kind in ("hyperscan", "pyahocorasick")}
    out = {
        f"matcher_{kind}_index": statistics.median(timed(lambda m=m: m.scan_text(text), repeats))
        for kind, m in matchers.items()
    }
    out["each_regex_whole_text"] = statistics.median(
        timed(lambda: [r.search(text) for r in regexes], repeats)
    )
    combined = re.compile("|".join(f"(?:{cp.pattern.regex})" for cp in library), re.IGNORECASE)
    out["one_combined_regex_finditer"] = statistics.median(
        timed(lambda: list(combined.finditer(text)), repeats)
    )
    try:
        import re2
    except ImportError:
        return out
    options = re2.Options()
    options.case_sensitive = False
    rset = re2.Set.SearchSet(options)
    ok = 0
    for cp in library:
        try:
            rset.Add(cp.pattern.regex)
            ok += 1
        except re2.error:
            continue
    rset.Compile()
    lines = text.split("\n")
    out["re2_set_per_line"] = statistics.median(timed(lambda: [rset.Match(line) for line in lines], repeats))
    out["re2_set_patterns_compiled"] = ok
    return out


def peak_rss_kb() -> int:
    """This process's peak resident set in KiB: ``VmHWM`` (reset by exec, unlike ``ru_maxrss``, which
    a child started by a big parent inherits), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_100mb(path: Path) -> dict[str, float]:
    """Peak RSS and peak Python allocations of a child process that diagnoses a 100 MB file."""
    root = str(Path(__file__).resolve().parent.parent)
    code = (
        f"import sys, time, tracemalloc; sys.path.insert(0, {root!r})\n"
        "from bench.bench_analyzer import peak_rss_kb\n"
        "from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary\n"
        "a = FailureAnalyzer(PatternLibrary.load()); a.matcher\n"
        "base = peak_rss_kb()\n"
        f"t = time.perf_counter(); d = a.analyze_file({str(path)!r}); t = time.perf_counter() - t\n"
        "peak = peak_rss_kb()\n"
        f"tracemalloc.start(); a.analyze_file({str(path)!r}); traced = tracemalloc.get_traced_memory()[1]\n"
        "print(base, peak, t, d.root_cause.value, traced)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600
    )
    base, peak, secs, cause, traced = out.stdout.split()
    return {
        "rss_before_mb": int(base) / 1024,
        "rss_peak_mb": int(peak) / 1024,
        "python_allocations_peak_mb": int(traced) / 2**20,
        "seconds": float(secs),
        "root_cause": cause,
    }


def adversarial(library: PatternLibrary, repeats: int) -> dict[str, dict[str, object]]:
    """Median seconds of one analysis of each hostile input (see ``tests/data/adversarial/make.py``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from support.adversarial import make as adv

    analyzer = FailureAnalyzer(library)
    analyzer.analyze("warm up")
    examples = [cp.pattern.examples[0].text for cp in library]
    inputs = {
        "hits_line_4MB": adv.hits_line(4 * 1024 * 1024),
        "every_pattern_line_4MB": adv.many_patterns_line(examples, 4_000_000),
        "jwt_line_80KB": adv.jwt_line(80 * 1024),
        "ansible_result_2.7MB": adv.ansible_result_line(2_700_000),
        "deep_json_10000": adv.deep_json_line(10_000),
        "deep_ansible_10000": adv.deep_ansible_line(10_000),
    }
    out: dict[str, dict[str, object]] = {}
    for name, text in inputs.items():
        samples = timed(lambda text=text: analyzer.analyze(text), repeats)
        out[name] = {
            "bytes": len(text.encode()),
            "seconds_p50": statistics.median(samples),
            "root_cause": analyzer.analyze(text).root_cause.value,
        }
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "redos.yaml").write_text(json.dumps(adv.redos_pack()))
        redos = FailureAnalyzer(PatternLibrary.load([tmp], shipped=False))
        redos.analyze("warm up")
        line = adv.redos_line(64)
        samples = timed(lambda: redos.analyze(line), repeats)
        out["redos_user_pack_line"] = {
            "bytes": len(line),
            "seconds_p50": statistics.median(samples),
            "root_cause": redos.analyze(line).root_cause.value,
        }
    return out


def generated_pack(count: int) -> dict[str, object]:
    """A pack of ``count`` distinct patterns shaped like real ones (a literal, alternatives, a number)."""
    patterns = [
        {
            "id": f"gen_{i:05d}_001",
            "regex": rf"\bwidget{i} (?:failed|crashed) with code \d+",
            "category": "configuration",
            "severity": "high",
            "retryable": False,
            "description": f"widget {i} failed",
            "examples": [{"text": f"widget{i} failed with code 3", "source": "generated"}],
            "near_misses": [{"text": f"widget{i} started", "source": "generated"}],
        }
        for i in range(count)
    ]
    return {"pack": "generated", "schema_version": 1, "patterns": patterns}


def large_pack(count: int = 20_000) -> dict[str, object]:
    """Load time, peak RSS and one analysis with a generated pack of ``count`` patterns, in child
    processes: first with an empty cache, then with the cache the first load wrote."""
    import yaml

    report: dict[str, object] = {"patterns": count}
    with tempfile.TemporaryDirectory() as tmp:
        packs, cache = Path(tmp) / "packs", Path(tmp) / "cache"
        packs.mkdir()
        (packs / "generated.yaml").write_text(yaml.safe_dump(generated_pack(count), sort_keys=False))
        report["pack_file_mb"] = (packs / "generated.yaml").stat().st_size / 1e6
        env = {**os.environ, "QUBINODE_RECOVERY_CACHE_DIR": str(cache)}
        for run in ("first_load_empty_cache", "later_load_cached"):
            out = subprocess.run(
                [sys.executable, __file__, "--large-pack-child", str(packs)],
                capture_output=True,
                text=True,
                check=True,
                timeout=1800,
                env=env,
            )
            report[run] = json.loads(out.stdout)
    return report


def large_pack_child(directory: str) -> None:
    """One load of the packs in ``directory`` and one analysis, measured (run in a child process)."""
    base = peak_rss_kb()
    start = time.perf_counter()
    library = PatternLibrary.load([directory])
    loaded = time.perf_counter()
    analyzer = FailureAnalyzer(library)
    analyzer.matcher  # noqa: B018 - builds (or loads) the prefilter database
    built = time.perf_counter()
    diagnosis = analyzer.analyze("Deploying\nwidget123 failed with code 3\n")
    analysed = time.perf_counter()
    row = {
        "patterns_loaded": len(library),
        "library_load_seconds": loaded - start,
        "prefilter_build_seconds": built - loaded,
        "first_analysis_seconds": analysed - built,
        "rss_before_mb": base / 1024,
        "rss_peak_mb": peak_rss_kb() / 1024,
        "decisive_pattern": diagnosis.primary_pattern,
    }
    print(json.dumps(row))


SECTIONS = ("sizes", "memory", "adversarial", "large_pack")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {SECTIONS}")
    parser.add_argument("--large-pack-child", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.large_pack_child:
        large_pack_child(args.large_pack_child)
        return 0
    sections = set(args.sections.split(","))
    library = PatternLibrary.load()
    analyzer = FailureAnalyzer(library)
    analyzer.analyze("warm up")
    report: dict[str, object] = {"python": platform.python_version(), "patterns": len(library)}
    if "sizes" in sections:
        report["sizes"] = sizes(library, analyzer, args.quick)
    if "memory" in sections:
        with tempfile.TemporaryDirectory() as tmp:
            big = Path(tmp) / "100mb.log"
            chunk = noisy_log(10_000_000, seed=11)
            with big.open("w") as handle:
                for _ in range(10):
                    handle.write(chunk)
            report["memory_100MB"] = memory_100mb(big)
            print(f"  100MB file: {report['memory_100MB']}")
    if "adversarial" in sections:
        report["adversarial"] = adversarial(library, 1 if args.quick else 3)
        for name, row in report["adversarial"].items():  # type: ignore[union-attr]
            print(f"{name:>24}: {row['seconds_p50']:.3f} s -> {row['root_cause']}")
    if "large_pack" in sections:
        report["large_pack"] = large_pack()
        print(f"  20,000-pattern pack: {report['large_pack']}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "analyzer.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**previous, **report}, indent=2) + "\n")
    return 0


def sizes(library: PatternLibrary, analyzer: FailureAnalyzer, quick: bool) -> dict[str, object]:
    """The analyzer against the baseline on a 1 KB message and noisy logs of 100 KB to 10 MB."""
    inputs = {"1KB_message": None, "100KB": 100_000, "1MB": 1_000_000, "10MB": 10_000_000}
    repeats = {"1KB_message": 2000, "100KB": 50, "1MB": 15, "10MB": 5}
    if quick:
        repeats = {k: max(2, v // 5) for k, v in repeats.items()}
    out: dict[str, object] = {}
    for name, size in inputs.items():
        text = MESSAGE_1KB if size is None else noisy_log(size)
        ours = timed(lambda text=text: analyzer.analyze(text), repeats[name])
        naive = timed(lambda text=text: naive_baseline(text), repeats[name])
        row = {
            "bytes": len(text),
            "repeats": repeats[name],
            "analyzer_p50_ms": statistics.median(ours) * 1000,
            "analyzer_p95_ms": p(ours, 0.95) * 1000,
            "baseline_p50_ms": statistics.median(naive) * 1000,
            "speedup_vs_baseline": statistics.median(naive) / statistics.median(ours),
            "analyzer_ms_per_mb": statistics.median(ours) * 1000 / (len(text) / 1e6),
            "root_cause": analyzer.analyze(text).root_cause.value,
        }
        if name == "1MB":
            row["alternatives_ms"] = {
                k: (v * 1000 if isinstance(v, float) else v)
                for k, v in alternatives(library, text, 3).items()
            }
        out[name] = row
        print(
            f"{name:>12}: analyzer p50 {row['analyzer_p50_ms']:.3f} ms, baseline p50 "
            f"{row['baseline_p50_ms']:.3f} ms, speed-up {row['speedup_vs_baseline']:.1f}x, "
            f"-> {row['root_cause']}"
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
