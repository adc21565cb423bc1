#!/usr/bin/env bash
# Create or update .venv with the project and what it needs. Idempotent: a stamp keyed by the
# hash of pyproject.toml and this script skips the install when nothing changed.
#   scripts/install.sh          core (what `make demo` needs)
#   scripts/install.sh dev      core + test tools (what `make test` needs)
# torch/torchvision are pinned to the versions that install offline on our machines; GPU
# users may pre-install their own build in the venv (pyproject states the compatible range).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-core}"
venv="${VENV:-.venv}"
python="${PYTHON:-python3}"
torch_pins="torch==2.14.1 torchvision==0.29.1"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
stamp="$venv/.installed-$extras-$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi

pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
if ! "$venv/bin/python" -c "import torch, torchvision" 2>/dev/null; then
    echo "installing $torch_pins (several GB, takes a minute or two)..."
    "${pip[@]}" install $torch_pins
fi
if [ "$extras" = dev ]; then target=".[dev]"; else target="."; fi
"${pip[@]}" install -e "$target"
rm -f "$venv"/.installed-"$extras"-*
touch "$stamp"
