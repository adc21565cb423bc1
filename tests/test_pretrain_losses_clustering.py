"""SwAV and DeepCluster-v2 losses against direct transcriptions of facebookresearch/swav (float64)."""

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse import csr_matrix
from sinkhorn_reference import ref_sinkhorn

from pretrain.losses.deepclusterv2 import deepclusterv2_loss, spherical_kmeans
from pretrain.losses.swav import sinkhorn_codes, swapped_prediction_loss


def ref_distributed_sinkhorn(out, epsilon, sinkhorn_iterations, world_size=1):
    """main_swav.py distributed_sinkhorn, one process (all_reduce = identity): its loop is ``ref_sinkhorn``."""
    return ref_sinkhorn(torch.exp(out / epsilon).t(), sinkhorn_iterations, world_size).t()


def ref_swav_loss(output, embedding, prototypes, bs, crops_for_assign, nmb_crops, temperature, epsilon, queue=None):
    """main_swav.py train: the loss block, with the queue already full (use_the_queue)."""
    loss = 0
    for i, crop_id in enumerate(crops_for_assign):
        with torch.no_grad():
            out = output[bs * crop_id: bs * (crop_id + 1)].detach()
            if queue is not None:
                out = torch.cat((torch.mm(queue[i], prototypes.t()), out))
            q = ref_distributed_sinkhorn(out, epsilon, 3)[-bs:]
        subloss = 0
        for v in np.delete(np.arange(np.sum(nmb_crops)), crop_id):
            x = output[bs * v: bs * (v + 1)] / temperature
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (np.sum(nmb_crops) - 1)
    return loss / len(crops_for_assign)


def _scores(seed, n_crops=3, batch=8, dim=6, k=5):
    g = torch.Generator().manual_seed(seed)
    embedding = F.normalize(torch.randn(n_crops * batch, dim, generator=g, dtype=torch.float64), dim=1)
    prototypes = F.normalize(torch.randn(k, dim, generator=g, dtype=torch.float64), dim=1).requires_grad_()
    return embedding.requires_grad_(), prototypes, g


def test_sinkhorn_codes_match_reference():
    g = torch.Generator().manual_seed(0)
    out = F.normalize(torch.randn(10, 4, generator=g, dtype=torch.float64), dim=1)
    codes = sinkhorn_codes(out, 0.05, 3)
    torch.testing.assert_close(codes, ref_distributed_sinkhorn(out, 0.05, 3), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(10, dtype=codes.dtype))


def test_swav_loss_matches_reference_multicrop_and_queue():
    for with_queue in (False, True):
        embedding, prototypes, g = _scores(1 + with_queue)
        bs, assign = 8, [0, 1]
        queue = F.normalize(torch.randn(2, 16, 6, generator=g, dtype=torch.float64), dim=2) if with_queue else None
        output = embedding @ prototypes.T
        scores = list(output.split(bs))
        codes = []
        for i, crop in enumerate(assign):
            out = scores[crop].detach()
            if queue is not None:
                out = torch.cat((queue[i] @ prototypes.detach().T, out))
            codes.append(sinkhorn_codes(out, 0.05, 3)[-bs:])
        ours = swapped_prediction_loss(scores, codes, assign, 0.1)
        ref = ref_swav_loss(embedding @ prototypes.T, embedding, prototypes, bs, assign, [2, 1], 0.1, 0.05, queue)
        grads = torch.autograd.grad(ours, (embedding, prototypes))
        ref_grads = torch.autograd.grad(ref, (embedding, prototypes))
        assert abs(ours.item() - ref.item()) <= 1e-6
        for a, b in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)


def ref_get_indices_sparse(data):  # main_deepclusterv2.py get_indices_sparse
    cols = np.arange(data.size)
    M = csr_matrix((cols, (data.ravel(), cols)), shape=(int(data.max()) + 1, data.size))
    return [np.unravel_index(row.data, data.shape) for row in M]


def ref_kmeans(memory, centroids, nmb_kmeans_iters):
    """main_deepclusterv2.py cluster_memory's k-means for one head, one process."""
    K = centroids.shape[0]
    for n_iter in range(nmb_kmeans_iters + 1):
        dot_products = torch.mm(memory, centroids.t())
        _, local_assignments = dot_products.max(dim=1)
        if n_iter == nmb_kmeans_iters:
            break
        where_helper = ref_get_indices_sparse(local_assignments.cpu().numpy())
        counts = torch.zeros(K).int()
        emb_sums = torch.zeros(K, memory.shape[1], dtype=memory.dtype)
        for k in range(len(where_helper)):
            if len(where_helper[k][0]) > 0:
                emb_sums[k] = torch.sum(memory[where_helper[k][0]], dim=0)
                counts[k] = len(where_helper[k][0])
        mask = counts > 0
        centroids[mask] = emb_sums[mask] / counts[mask].unsqueeze(1)
        centroids = F.normalize(centroids, dim=1, p=2)
    return centroids, local_assignments


def test_spherical_kmeans_matches_reference():
    g = torch.Generator().manual_seed(3)
    memory = F.normalize(torch.randn(60, 5, generator=g, dtype=torch.float64), dim=1)
    init = memory[torch.randperm(60, generator=g)[:7]]
    centroids, assignments = spherical_kmeans(memory, init, 10)
    ref_centroids, ref_assignments = ref_kmeans(memory, init.clone(), 10)
    torch.testing.assert_close(centroids, ref_centroids, rtol=1e-6, atol=1e-9)
    assert torch.equal(assignments, ref_assignments)
    assert len(assignments.unique()) > 1


def test_deepclusterv2_loss_matches_reference():
    g = torch.Generator().manual_seed(4)
    bs, n_crops, heads = 6, 2, [5, 4]
    scores = [torch.randn(n_crops * bs, k, generator=g, dtype=torch.float64, requires_grad=True) for k in heads]
    targets = [torch.randint(0, k, (bs,), generator=g) for k in heads]
    targets[1][2] = -100  # a sample not yet in the memory bank is ignored
    ours = deepclusterv2_loss(scores, targets, n_crops, 0.1)
    cross_entropy = torch.nn.CrossEntropyLoss(ignore_index=-100)  # main_deepclusterv2.py train
    ref = sum(cross_entropy(s / 0.1, t.repeat(n_crops)) for s, t in zip(scores, targets, strict=True)) / len(heads)
    grads, ref_grads = torch.autograd.grad(ours, scores), torch.autograd.grad(ref, scores)
    assert abs(ours.item() - ref.item()) <= 1e-6
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)
