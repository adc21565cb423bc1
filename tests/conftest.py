"""Shared test helpers.

``require(module)``: the real engines (Detectron2, MMSegmentation, a local SLURM cluster) are
installed by the README's test command, so in CI (``CI`` set) a missing one is a failure,
never a skip; on a developer's machine without them the test is skipped with the reason.
"""

import contextlib
import importlib
import os

import pytest
import torch


def require(module: str, how_to_install: str):
    """Import ``module`` or skip (outside CI) / fail (in CI) naming how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        message = f"{module} is not importable ({err}); install it with: {how_to_install}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def repo_path(relative: str) -> str:
    """The absolute path of a file shipped in the repository, so a test runs from any directory."""
    return os.path.join(REPO_ROOT, relative)


@contextlib.contextmanager
def in_repo_root():
    """For in-process code that reads a pipeline's stage arguments: those are relative to the repository
    root, where ``python -m slurm`` runs (docs/slurm.md). The caller's directory is restored after."""
    previous = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        yield
    finally:
        os.chdir(previous)


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """A real one-node SLURM cluster on localhost, brought up by ``scripts/slurm_cluster.sh up``.

    Installs the Debian packages when missing and starts the daemons when not running (both
    idempotent; the cluster is left running for the next session). Sets ``SLURM_CONF`` for this
    process and the commands it starts. Needs root and apt: elsewhere the test is skipped with the
    reason, except in CI (``CI`` set), where that is a failure.
    """
    import shutil
    import subprocess

    reason = None
    if os.geteuid() != 0:
        reason = "bringing up the test SLURM cluster needs root (scripts/slurm_cluster.sh up)"
    elif not shutil.which("apt-get") and not shutil.which("slurmctld"):
        reason = "no apt-get to install slurmctld/slurmd/munge/slurmdbd/mariadb-server"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    script = os.path.join(REPO_ROOT, "scripts", "slurm_cluster.sh")
    result = subprocess.run(["bash", script, "up"], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        pytest.fail(f"scripts/slurm_cluster.sh up failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    conf = result.stdout.strip().splitlines()[-1].removeprefix("export SLURM_CONF=")
    os.environ["SLURM_CONF"] = conf
    return conf


@pytest.fixture(scope="session", autouse=True)
def subprocess_temp_dir(tmp_path_factory):
    """Commands the tests start keep their temporary files under pytest's base temp, not in /tmp.

    torchrun (``torch.distributed.run``) makes a ``torchelastic_*`` log folder per launch in the
    temp dir and never removes it; ``TMPDIR`` sends those, and any other command's temporary
    files, where pytest cleans up. Restored at the end of the session.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(tmp_path_factory.mktemp("subprocess_tmp")))
        yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """The probe forward passes are tiny; on small CI containers thread start-up costs 50x the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_state(arch: str, seed: int) -> dict[str, torch.Tensor]:
    """A backbone state_dict where every tensor, BN statistics included, is distinct and random.

    Random BN statistics and affine parameters make a swapped mapping (bn1 <-> bn2, shortcut <->
    shortcut.norm) visible; convolutions keep their (seeded) torchvision init, so the features
    stay finite and well scaled for the feature comparison.
    """
    from pretrain.models import build_backbone

    torch.manual_seed(seed)
    state = {}
    for key, value in build_backbone(arch).state_dict().items():
        if key.endswith("running_var"):
            state[key] = torch.rand(value.shape) + 0.5
        elif key.endswith(("running_mean", "bias")):
            state[key] = torch.randn(value.shape) * 0.1
        elif key.endswith("weight") and value.dim() == 1:
            state[key] = 1 + torch.randn(value.shape) * 0.1
        elif key.endswith("num_batches_tracked"):
            state[key] = torch.randint(0, 1000, value.shape, dtype=value.dtype)
        else:
            state[key] = value
    return state
