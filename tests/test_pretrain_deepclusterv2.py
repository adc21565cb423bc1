"""DeepCluster-v2 as a method: clustering, loss and memory bank against facebookresearch/swav, DDP = 1 process.

* ``cluster`` + ``forward`` + the memory write of one step against a direct transcription of
  ``main_deepclusterv2.py`` (``cluster_memory`` over several heads cycling through the crops'
  memories, the ``train`` loss, the memory-bank update), forward and gradient in float64;
* the loss falls on a fixed batch within an epoch (fixed targets);
* the whole engine (indices of the rank shards, the ``init_memory`` pass, the k-means at each
  epoch, the gathered memory) on 2 gloo ranks equals one process on the same global batches
  (float64, 1e-9). The k-means and the loss themselves: ``test_pretrain_losses_clustering.py``;
  the checkpoint -> Detectron2 test: ``test_pretrain_baseline_methods.py``.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ddp_harness import ROOT, torchrun
from test_pretrain_losses_clustering import ref_kmeans

from pretrain.config import resolve
from pretrain.engine import build_model
from resa_core.errors import UserError

DEMO = str(Path(ROOT) / "configs" / "pretrain" / "demo_fmnist_resa.yaml")
TINY = ["method=deepclusterv2", "model.projector_hidden_dim=32", "model.projector_out_dim=8",
        "loss.num_prototypes=[5,4,3]"]
TEMPERATURE = 0.1  # main_deepclusterv2.py --temperature default


def tiny_model(num_samples, samples_per_epoch):
    model = build_model(resolve(DEMO, [*TINY, "arch=resnet18_cifar"]), torch.device("cpu")).double()
    model.bind_data(num_samples, samples_per_epoch)
    return model


def ref_cluster_memory(local_memory_index, local_memory_embeddings, size_dataset, nmb_prototypes, random_idx):
    """main_deepclusterv2.py cluster_memory, one process; ``random_idx(i_K)`` replaces rank 0's torch.randperm."""
    j = 0
    assignments = -100 * torch.ones(len(nmb_prototypes), size_dataset).long()
    centroids_all = []
    for i_K, K in enumerate(nmb_prototypes):
        random_idx_K = random_idx(i_K)
        assert len(random_idx_K) >= K, "please reduce the number of centroids"
        centroids = local_memory_embeddings[j][random_idx_K]
        centroids, local_assignments = ref_kmeans(local_memory_embeddings[j], centroids.clone(), 10)
        centroids_all.append(centroids)
        assignments[i_K][local_memory_index] = local_assignments
        j = (j + 1) % len(local_memory_embeddings)
    return assignments, centroids_all


def test_cluster_loss_and_memory_update_match_the_reference(one_torch_thread):
    torch.manual_seed(0)
    num_samples, rows, batch = 20, 16, 4
    model = tiny_model(num_samples, rows)
    g = torch.Generator().manual_seed(1)
    model.memory.copy_(F.normalize(torch.randn(2, rows, 8, generator=g, dtype=torch.float64), dim=2))
    model.memory_index.copy_(torch.randperm(num_samples, generator=g)[:rows])  # 4 samples not in the memory
    model.epoch = 3
    views = [torch.rand(batch, 3, 8, 8, generator=g, dtype=torch.float64) for _ in range(3)]  # 2 + 1 small crop
    idx = torch.tensor([model.memory_index[0].item(), model.memory_index[5].item(), 7, 11])
    model.batch_indices = idx
    # the reference, on copies of the memory and with our initial centroid rows
    ref_assignments, ref_centroids = ref_cluster_memory(model.memory_index.clone(), model.memory.clone(), num_samples,
                                                        [5, 4, 3], model.initial_centroid_rows)
    loss, _ = model(*views)
    assert torch.equal(model.assignments, ref_assignments) and int(model.clustered_epoch) == 3
    for proto, centroids in zip(model.prototypes, ref_centroids, strict=True):
        torch.testing.assert_close(proto.weight, centroids, rtol=1e-6, atol=1e-9)
    # main_deepclusterv2.py train: emb, output = model(inputs) (all crops), loss over heads
    emb = torch.cat([F.normalize(model.projector(model.encoder(v)), dim=1) for v in views])
    cross_entropy = torch.nn.CrossEntropyLoss(ignore_index=-100)
    ref = 0
    for h in range(3):
        scores = model.prototypes[h](emb) / TEMPERATURE
        ref += cross_entropy(scores, ref_assignments[h][idx].repeat(3))
    ref /= 3
    assert abs(loss.item() - ref.item()) <= 1e-6
    params = [model.projector[-1].weight, model.encoder.conv1.weight]
    for ours, theirs in zip(torch.autograd.grad(loss, params), torch.autograd.grad(ref, params), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-9)
    assert not model.prototypes[0].weight.requires_grad  # freeze_prototypes_niters 1e10: never trained
    model.after_step(0.5)  # "update memory banks": rows [start_idx, start_idx + bs) of crops_for_assign
    emb = emb.detach()
    assert torch.equal(model.memory_index[:batch], idx) and int(model.memory_cursor) == batch
    torch.testing.assert_close(model.memory[:, :batch], torch.stack([emb[:batch], emb[batch:2 * batch]]))
    model(*views)  # same epoch: no new clustering
    assert torch.equal(model.assignments, ref_assignments)


def test_more_prototypes_than_samples_is_a_user_error():
    with pytest.raises(UserError, match="reduce the number of prototypes"):
        tiny_model(20, 4)


def test_loss_falls_on_a_fixed_batch(one_torch_thread):
    torch.manual_seed(0)
    steps = 6
    model = tiny_model(16, 16 * steps)  # an epoch of 6 batches, all the same 16 samples
    g = torch.Generator().manual_seed(2)
    base = torch.rand(16, 3, 8, 8, generator=g, dtype=torch.float64)
    views = [base + 0.1 * torch.randn(16, 3, 8, 8, generator=g, dtype=torch.float64) for _ in range(2)]
    model.batch_indices = torch.arange(16)
    for _ in range(steps):
        model.init_memory(*views)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    losses = []
    for _ in range(steps):  # epoch 0: the targets of the k-means before its first step
        loss, _ = model(*views)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.after_step(0.5)
        losses.append(loss.item())
    assert (model.assignments >= 0).all()  # every sample was in the memory
    assert sum(losses[-2:]) / 2 < 0.7 * sum(losses[:2]) / 2, losses
    with torch.no_grad():  # what it learned is the k-means targets: each crop's top prototype is its cluster
        z = [F.normalize(model.projector(model.encoder(v)), dim=1) for v in views]
        hits = [(model.prototypes[h](e).argmax(dim=1) == model.assignments[h]).double().mean()
                for h in range(3) for e in z]
    assert min(hits) >= 0.75, hits  # measured: 0.875 (2 of 16) at worst


@pytest.mark.slow
def test_engine_on_two_ranks_equals_one_process(tmp_path):
    """Two epochs of two steps: init pass, k-means at each epoch start, gathered memory, rank shards of indices."""
    args = [DEMO, *TINY, "data.train_size=16", "data.image_size=16", "optim.batch_size=8", "epochs=2",
            "optim.warmup_epochs=1", "run.dtype=float64", "run.log_every_steps=1", "run.num_threads=1",
            "run.tensorboard=false", "loss.num_prototypes=[5,4]"]
    torchrun(["-m", "pretrain", *args, f"output_dir={tmp_path / 'ddp'}"])
    from pretrain.engine import train

    train(resolve(args[0], [*args[1:], f"output_dir={tmp_path / 'one'}"]))
    states = [torch.load(tmp_path / run / "checkpoint.pth", weights_only=True) for run in ("ddp", "one")]
    losses = [[json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
               if '"loss"' in line] for run in ("ddp", "one")]
    assert len(losses[0]) == 4 and losses[0] == pytest.approx(losses[1], rel=1e-9, abs=0)
    ddp, one = (state["train_state"]["model"] for state in states)
    assert torch.equal(ddp["assignments"], one["assignments"]) and (one["assignments"] >= 0).sum() == 2 * 16
    assert torch.equal(ddp["memory_index"], one["memory_index"])
    assert sorted(one["memory_index"].tolist()) == list(range(16))
    for name in ("memory", "prototypes.0.weight", "prototypes.1.weight", "encoder.conv1.weight",
                 "encoder.layer4.1.bn2.weight", "projector.0.weight"):
        assert one[name].dtype == torch.float64
        assert (ddp[name] - one[name]).norm() <= 1e-9 * one[name].norm(), name
    assert np.isfinite(losses[1]).all()
