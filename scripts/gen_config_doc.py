"""Write docs/configuration.md from the option table in qubinode_recovery_provider/config.py.

python scripts/gen_config_doc.py          # rewrite the page
python scripts/gen_config_doc.py --check  # exit 1 when the page is out of date (run by the tests)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qubinode_recovery_provider.config import OPTIONS, SECTION  # noqa: E402

PAGE = ROOT / "docs" / "configuration.md"


def render() -> str:
    lines = [
        "# Configuration",
        "",
        f"Every setting lives in the `[{SECTION}]` section of `airflow.cfg`, or in the environment as",
        f"`AIRFLOW__{SECTION.upper()}__<OPTION>`.",
        f"`airflow config list --section {SECTION} --include-descriptions` shows them with their defaults.",
        "The CLI and the core read the same settings without importing",
        "Airflow: environment first, then `airflow.cfg` (`$AIRFLOW_CONFIG` or `$AIRFLOW_HOME/airflow.cfg`),",
        "then the default.",
        "",
        "This page is generated from `qubinode_recovery_provider/config.py` by `scripts/gen_config_doc.py`.",
        "",
        "| option | type | default | description |",
        "|---|---|---|---|",
    ]
    for name, opt in OPTIONS.items():
        default = f"`{opt.default}`" if opt.default else "(empty)"
        example = f" Example: `{opt.example}`." if opt.example else ""
        lines.append(f"| `{name}` | {opt.type} | {default} | {opt.description}{example} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if PAGE.read_text() == text else 1)
    PAGE.write_text(text)
