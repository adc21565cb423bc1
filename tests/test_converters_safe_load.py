"""converters.safe_load: hostile, truncated and garbage files are refused with one line; nothing runs."""

from __future__ import annotations

import os
import pickle

import numpy
import pytest
import torch

from converters import read_backbone
from converters.safe_load import load_pickle, load_torch
from resa_core.errors import UserError


class TouchFileOnLoad:
    """Unpickling this calls os.system("touch <marker>"): proof of code execution if it ever runs."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_hostile_pkl_is_refused_by_name_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    payload = {"model": {"stem.conv1.weight": TouchFileOnLoad(marker)}, "__author__": "x"}
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(UserError, match=rf"evil\.pkl: refusing to unpickle global '{os.system.__module__}\.system'"):
        read_backbone(path)
    assert not marker.exists()


def test_hostile_pth_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "extra": TouchFileOnLoad(marker)}, path)
    with pytest.raises(UserError, match=r"evil\.pth: .*system") as err:
        read_backbone(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_pickles_of_every_protocol_load(protocol, tmp_path):
    """Python-2-era model-zoo files (protocol 2) through Python 3.14's default (5) all load."""
    arrays = {"res2.0.conv1.weight": numpy.arange(6, dtype=numpy.float32).reshape(2, 3), "n": numpy.int64(7)}
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps({"model": arrays}, protocol=protocol))
    loaded = load_pickle(path)["model"]
    numpy.testing.assert_array_equal(loaded["res2.0.conv1.weight"], arrays["res2.0.conv1.weight"])
    assert loaded["n"] == 7


@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
def test_truncated_file_is_one_line_error_naming_the_path(suffix, tmp_path):
    state = {"conv1.weight": torch.randn(64, 3, 7, 7)}
    path = tmp_path / f"cut{suffix}"
    if suffix == ".pkl":
        path.write_bytes(pickle.dumps({"model": {k: v.numpy() for k, v in state.items()}}))
    else:
        torch.save(state, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError) as err:
        read_backbone(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_garbage_and_missing_files_are_user_errors(tmp_path):
    garbage = tmp_path / "noise.pth"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(UserError, match="noise.pth: not a readable PyTorch file"):
        load_torch(garbage)
    with pytest.raises(UserError, match="no such file"):
        load_torch(tmp_path / "absent.pth")


def test_unrecognised_layout_names_what_it_saw(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(UserError, match=r"not a recognised checkpoint format \(top level: weights\)"):
        read_backbone(path)


def test_truncated_safetensors_is_one_line_error(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "cut.safetensors"
    save_file({"conv1.weight": torch.randn(64, 3, 7, 7)}, str(path))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match=r"cut\.safetensors: not a readable safetensors file") as err:
        read_backbone(path)
    assert "\n" not in str(err.value)


def test_training_args_namespace_loads_but_other_classes_do_not(tmp_path):
    """DINO stores argparse.Namespace as ``args``: admitted, as a plain attribute bag; nothing else is."""
    import argparse
    from fractions import Fraction

    ok = tmp_path / "dino.pth"
    torch.save({"args": argparse.Namespace(arch="vit_small"), "teacher": {}}, ok)
    assert load_torch(ok)["args"].arch == "vit_small"
    bad = tmp_path / "fraction.pth"
    torch.save({"args": Fraction(1, 3)}, bad)
    with pytest.raises(UserError, match=r"fraction\.pth: .*Fraction"):
        load_torch(bad)
