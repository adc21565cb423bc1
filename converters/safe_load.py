"""Open untrusted checkpoint files without running code from them (DESIGN.md, "External checkpoints").

Both PyTorch files and pickles can name any importable callable, and unpickling calls it. So:

- ``.pth`` / ``.pt`` / ``.tar`` (anything but a pickle): ``torch.load(weights_only=True)``, which
  admits tensors and plain containers only, plus :func:`_torch_extra_globals`: data classes that
  training scripts store beside the weights, each rebuilt as inert data (no method of the
  original class runs): ``argparse.Namespace`` (DINO's ``args``); ``pathlib`` paths as pure paths
  (DINO's ``run_with_submitit.py`` stores ``args.output_dir`` as a ``PosixPath``); numpy arrays
  and scalars; and mmengine's ``HistoryBuffer`` (``message_hub`` of every mmengine checkpoint,
  MMSelfSup 1.x / MMPretrain) as a :class:`StandIn` that only holds its pickled state.
- ``.pkl``: :class:`RestrictedUnpickler`, whose ``find_class`` admits only what a dict of numpy
  arrays needs (the Detectron2 model-zoo format); any other global is refused, by name,
  before it is imported.
- ``.safetensors``: the safetensors format holds tensors and string metadata only.

Every failure (missing, truncated, garbage, hostile) is one :class:`UserError` line naming the
path. Downstream and the Detectron2 launcher reuse these loaders: Detectron2's own checkpointer
opens ``.pkl`` with plain ``pickle.load``, so it must be handed the dict loaded here, never the
user's path.
"""

from __future__ import annotations

import argparse
import codecs
import collections
import pathlib
import pickle
from pathlib import Path
from typing import Any

import torch

from resa_core.errors import UserError

PICKLE_SUFFIXES = (".pkl", ".pickle")
SAFETENSORS_SUFFIX = ".safetensors"


def _numpy_core():
    """``numpy._core`` (numpy >= 2), else ``numpy.core``; pickles name either, whichever wrote them."""
    try:
        import numpy._core as core
    except ImportError:  # numpy 1.x
        import numpy.core as core
    return core


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """What pickled numpy arrays, dtypes and scalars name; they rebuild data, never call user code."""
    import numpy

    core = _numpy_core()
    numpy_globals = {
        # ndarray.__reduce__ for protocols <= 4: _reconstruct(ndarray, shape, dtype) + __setstate__.
        "multiarray._reconstruct": core.multiarray._reconstruct,
        # numpy scalars (a 0-d value stored as np.float32(...)).
        "multiarray.scalar": core.multiarray.scalar,
        # ndarray.__reduce_ex__ for protocol 5 (the default pickle protocol from Python 3.14 on).
        "numeric._frombuffer": core.numeric._frombuffer,
    }
    allowed: dict[tuple[str, str], Any] = {}
    for package in ("numpy.core", "numpy._core"):
        for dotted, obj in numpy_globals.items():
            submodule, name = dotted.split(".")
            allowed[(f"{package}.{submodule}", name)] = obj
    allowed[("numpy", "ndarray")] = numpy.ndarray
    allowed[("numpy", "dtype")] = numpy.dtype
    # Protocol 2 (Python-2-compatible) pickles store array bytes as _codecs.encode(text, "latin1").
    allowed[("_codecs", "encode")] = codecs.encode
    return allowed


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed = _numpy_globals()
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    for container in (dict, list, tuple, set, frozenset):
        allowed[("builtins", container.__name__)] = container
        allowed[("__builtin__", container.__name__)] = container  # Python 2 pickles
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and plain containers, and nothing else."""

    def __init__(self, file, *, path: str, **kwargs) -> None:
        super().__init__(file, **kwargs)
        self._path = path
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise UserError(
                f"{self._path}: refusing to unpickle global '{module}.{name}' "
                "(only numpy arrays and plain containers are allowed in a .pkl checkpoint)"
            )
        return self._allowed[(module, name)]


class StandIn:
    """An inert object standing for an instance of a class we refuse to import (``stands_for``).

    Unpickling creates it without arguments and hands it the pickled state, which the restricted
    unpickler has already limited to tensors, numpy arrays and plain containers; it keeps that
    state and has no other behaviour.
    """

    stands_for = ""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<stand-in for {self.stands_for}>"


# Classes seen in real checkpoints beside the weights, rebuilt as StandIns. mmengine's
# Runner.save_checkpoint (open-mmlab/mmengine mmengine/runner/runner.py) stores
# message_hub.state_dict(), whose log_scalars are HistoryBuffer objects
# (mmengine/logging/history_buffer.py: max_length, _log_history, _count_history arrays).
STAND_IN_CLASSES = ("mmengine.logging.history_buffer.HistoryBuffer",)


def _stand_in_type(qualified: str) -> type[StandIn]:
    return type(qualified.rsplit(".", 1)[-1] + "StandIn", (StandIn,), {"stands_for": qualified})


_STAND_INS = {qualified: _stand_in_type(qualified) for qualified in STAND_IN_CLASSES}


def _stand_in_attribute(owner: Any, name: str) -> str:
    """Replaces ``getattr`` in a torch file: only ``getattr(<stand-in class>, name)``, answered by a label.

    Protocol-2 pickles name a class's function as ``getattr(cls, "name")``; HistoryBuffer pickles
    its statistics methods (``HistoryBuffer.min`` ...) that way. A real getattr would hand the file
    any attribute of any allowed object, so this returns the inert string ``"<class>.<name>"`` and
    refuses every other owner.
    """
    if isinstance(owner, type) and issubclass(owner, StandIn) and isinstance(name, str):
        return f"{owner.stands_for}.{name}"
    raise pickle.UnpicklingError(f"refusing getattr on {type(owner).__name__} (only on stand-in classes)")


def _pure_paths() -> dict[str, Any]:
    """Pickled ``pathlib`` paths as pure paths (string manipulation only, no file system access)."""
    paths = {}
    for module in ("pathlib", "pathlib._local"):  # Python 3.13 moved the classes to pathlib._local
        paths[f"{module}.PosixPath"] = pathlib.PurePosixPath
        paths[f"{module}.WindowsPath"] = pathlib.PureWindowsPath
        paths[f"{module}.PurePosixPath"] = pathlib.PurePosixPath
        paths[f"{module}.PureWindowsPath"] = pathlib.PureWindowsPath
    return paths


def _numpy_dtype_classes() -> dict[str, type]:
    """numpy >= 1.25 rebuilds ``numpy.dtype("f8")`` as a ``numpy.dtypes.Float64DType``, whose state
    torch's unpickler sets only for allowlisted types (the class is never named in the file)."""
    import numpy

    classes = {type(numpy.dtype(code)) for code in numpy.typecodes["All"] if code != "O"}  # no object arrays
    return {f"{cls.__module__}.{cls.__qualname__}": cls for cls in classes}


def _torch_extra_globals() -> list[Any]:
    """``torch.serialization.safe_globals`` entries beyond tensors and containers: ``(object, pickled name)``."""
    named: dict[str, Any] = {"argparse.Namespace": argparse.Namespace}
    named.update(_pure_paths())
    named.update({f"{module}.{name}": obj for (module, name), obj in _numpy_globals().items()})
    named.update(_numpy_dtype_classes())
    named.update(_STAND_INS)
    for builtins_module in ("builtins", "__builtin__"):  # protocol 2 writes __builtin__
        named[f"{builtins_module}.getattr"] = _stand_in_attribute
    return [(obj, name) for name, obj in named.items()]


def _check_file(path: Path) -> None:
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_file():
        raise UserError(f"{path}: not a file")


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    # torch's weights_only refusal is a paragraph; the line naming the refused global is the useful one
    # ("Trying to load unsupported GLOBAL posix.system ..." / "Unsupported global: GLOBAL ...").
    for line in lines:
        if "unsupported" in line.lower():
            return line
    return lines[0] if lines else type(err).__name__


def load_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (latin1 for Python 2 pickles, as Detectron2)."""
    path = Path(path)
    _check_file(path)
    try:
        with open(path, "rb") as handle:
            return RestrictedUnpickler(handle, path=str(path), encoding="latin1").load()
    except UserError:
        raise
    except Exception as err:  # any failure inside untrusted bytes is bad input, not a bug
        raise UserError(f"{path}: not a readable pickle ({type(err).__name__}: {_first_line(err)})") from None


def load_torch(path: str | Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with one-line errors."""
    path = Path(path)
    _check_file(path)
    try:
        with torch.serialization.safe_globals(_torch_extra_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, garbage bytes, or a refused global
        raise UserError(
            f"{path}: not a readable PyTorch file, or it holds more than tensors and plain containers "
            f"({type(err).__name__}: {_first_line(err)})"
        ) from None


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file, with one-line errors."""
    from safetensors.torch import load_file

    path = Path(path)
    _check_file(path)
    try:
        return load_file(path, device="cpu")
    except Exception as err:  # truncated header, garbage bytes
        raise UserError(f"{path}: not a readable safetensors file ({type(err).__name__}: {_first_line(err)})") from None


def load_checkpoint_file(path: str | Path) -> Any:
    """Load any supported file, choosing the loader by suffix (``.pkl`` pickle, ``.safetensors``, else torch)."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return load_pickle(path)
    if path.suffix.lower() == SAFETENSORS_SUFFIX:
        return load_safetensors(path)
    return load_torch(path)
