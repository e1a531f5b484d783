#!/usr/bin/env bash
# Take a fresh Debian 12 machine to a working virtualenv in .venv: system packages first (only when
# missing), then the provider with every extra its tests need. Safe to run again: it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium (and a font for its screenshots): the UI browser test, tests/plugins/test_ui_browser.py
SYSTEM_PACKAGES=(libvirt-dev pkg-config postgresql redis-server chromium fonts-dejavu-core)
missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing system packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
    .venv/bin/pip install -q --upgrade pip setuptools wheel
fi
stamp=.venv/.qubinode-setup-stamp
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing the provider and its test extras"
    .venv/bin/pip install -q -e '.[all,test]'
    touch "$stamp"
fi
echo "setup: ready (.venv)"
