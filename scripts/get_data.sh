#!/usr/bin/env bash
# Make real Fashion-MNIST available: the Debian package dataset-fashion-mnist when it can be
# installed (files under /usr/share/datasets/fashion-mnist), else torchvision's downloader
# into data/FashionMNIST/raw. Says both ways when neither works.
set -uo pipefail
cd "$(dirname "$0")/.."
debian_dir=/usr/share/datasets/fashion-mnist
python="${VENV:-.venv}/bin/python"

if [ -f "$debian_dir/train-images-idx3-ubyte.gz" ]; then exit 0; fi
if [ -f data/FashionMNIST/raw/train-images-idx3-ubyte ] || [ -f data/FashionMNIST/raw/train-images-idx3-ubyte.gz ]; then
    exit 0
fi
if command -v apt-get >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    echo "installing the Debian package dataset-fashion-mnist..."
    if $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
        || { $sudo apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null 2>&1 && $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q dataset-fashion-mnist >/dev/null 2>&1; }; then
        [ -f "$debian_dir/train-images-idx3-ubyte.gz" ] && exit 0
    fi
fi
echo "downloading Fashion-MNIST with torchvision into data/..."
if "$python" -c "import torchvision; torchvision.datasets.FashionMNIST('data', train=True, download=True); torchvision.datasets.FashionMNIST('data', train=False, download=True)" >/dev/null 2>&1; then
    exit 0
fi
echo "error: Fashion-MNIST is not available: install the Debian package 'dataset-fashion-mnist' (apt-get install dataset-fashion-mnist, as root) or let torchvision download it (needs internet): python -c \"import torchvision; torchvision.datasets.FashionMNIST('data', download=True)\"" >&2
exit 1
