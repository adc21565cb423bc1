"""Each baseline loss against a direct transcription of its reference implementation (float64, random tensors).

The ``reference_*`` functions below are copied from the cited files with only the distributed
calls removed (one process: ``gather`` is the identity, rank 0); forward values and input
gradients must agree to 1e-6 (they agree to rounding).
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pretrain.lars import LARS
from pretrain.losses.cosine import byol_loss, simsiam_loss
from pretrain.losses.dino import batch_center, dino_loss, teacher_temperature
from pretrain.losses.moco import moco_queue_infonce, moco_v3_infonce
from pretrain.losses.nt_xent import nt_xent
from pretrain.schedules import lr_at

TOL = dict(rtol=1e-6, atol=1e-6)


# --- transcriptions ---------------------------------------------------------------------------------

def reference_simclr(z, indexes, temperature=0.1):
    """solo-learn solo/losses/simclr.py::simclr_loss_func (gather = identity, get_rank() = 0)."""
    z = F.normalize(z, dim=-1)
    gathered_z = z
    sim = torch.exp(torch.einsum("if, jf -> ij", z, gathered_z) / temperature)
    gathered_indexes = indexes
    indexes = indexes.unsqueeze(0)
    gathered_indexes = gathered_indexes.unsqueeze(0)
    pos_mask = indexes.t() == gathered_indexes
    pos_mask[:, z.size(0) * 0:].fill_diagonal_(0)
    neg_mask = indexes.t() != gathered_indexes
    pos = torch.sum(sim * pos_mask, 1)
    neg = torch.sum(sim * neg_mask, 1)
    return -(torch.mean(torch.log(pos / (pos + neg))))


def reference_mocov2plus(query, key, queue, temperature=0.1):
    """solo-learn solo/losses/mocov2plus.py::mocov2plus_loss_func."""
    pos = torch.einsum("nc,nc->n", [query, key]).unsqueeze(-1)
    neg = torch.einsum("nc,ck->nk", [query, queue])
    logits = torch.cat([pos, neg], dim=1)
    logits /= temperature
    targets = torch.zeros(query.size(0), device=query.device, dtype=torch.long)
    return F.cross_entropy(logits, targets)


def reference_mocov3(q, k, T):
    """facebookresearch/moco-v3 moco/builder.py::MoCo.contrastive_loss (concat_all_gather = identity, rank 0)."""
    q = torch.nn.functional.normalize(q, dim=1)
    k = torch.nn.functional.normalize(k, dim=1)
    logits = torch.einsum("nc,mc->nm", [q, k]) / T
    N = logits.shape[0]
    labels = torch.arange(N, dtype=torch.long) + N * 0
    return torch.nn.CrossEntropyLoss()(logits, labels) * (2 * T)


def reference_byol(p, z):
    """solo-learn solo/losses/byol.py::byol_loss_func, the ``simplified=False`` branch."""
    p = F.normalize(p, dim=-1)
    z = F.normalize(z, dim=-1)
    return 2 - 2 * (p * z.detach()).sum(dim=1).mean()


def reference_simsiam(p, z):
    """solo-learn solo/losses/simsiam.py::simsiam_loss_func, the ``simplified=False`` branch."""
    p = F.normalize(p, dim=-1)
    z = F.normalize(z, dim=-1)
    return -(p * z.detach()).sum(dim=1).mean()


class ReferenceDINOLoss(torch.nn.Module):
    """facebookresearch/dino main_dino.py::DINOLoss (dist.all_reduce and world size 1 removed)."""

    def __init__(self, out_dim, ncrops, warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs, nepochs,
                 student_temp=0.1, center_momentum=0.9):
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.ncrops = ncrops
        self.register_buffer("center", torch.zeros(1, out_dim, dtype=torch.float64))
        self.teacher_temp_schedule = np.concatenate((
            np.linspace(warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs),
            np.ones(nepochs - warmup_teacher_temp_epochs) * teacher_temp
        ))

    def forward(self, student_output, teacher_output, epoch):
        student_out = student_output / self.student_temp
        student_out = student_out.chunk(self.ncrops)
        temp = self.teacher_temp_schedule[epoch]
        teacher_out = F.softmax((teacher_output - self.center) / temp, dim=-1)
        teacher_out = teacher_out.detach().chunk(2)
        total_loss = 0
        n_loss_terms = 0
        for iq, q in enumerate(teacher_out):
            for v in range(len(student_out)):
                if v == iq:
                    continue
                loss = torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1)
                total_loss += loss.mean()
                n_loss_terms += 1
        total_loss /= n_loss_terms
        self.update_center(teacher_output)
        return total_loss

    @torch.no_grad()
    def update_center(self, teacher_output):
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True)
        batch_center = batch_center / (len(teacher_output) * 1)
        self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)


class ReferenceLARS(torch.optim.Optimizer):
    """solo-learn solo/utils/lars.py::LARS.step (dampening 0, no Nesterov)."""

    def __init__(self, params, lr, momentum=0, weight_decay=0, eta=1e-3, eps=1e-8, clip_lr=False,
                 exclude_bias_n_norm=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, eps=eps,
                                      clip_lr=clip_lr, exclude_bias_n_norm=exclude_bias_n_norm))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            weight_decay = group["weight_decay"]
            momentum = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                p_norm = torch.norm(p.data)
                g_norm = torch.norm(p.grad.data)
                if p.ndim != 1 or not group["exclude_bias_n_norm"]:
                    if p_norm != 0 and g_norm != 0:
                        lars_lr = p_norm / (g_norm + p_norm * weight_decay + group["eps"])
                        lars_lr *= group["eta"]
                        if group["clip_lr"]:
                            lars_lr = min(lars_lr / group["lr"], 1)
                        d_p = d_p.add(p, alpha=weight_decay)
                        d_p *= lars_lr
                if momentum != 0:
                    param_state = self.state[p]
                    if "momentum_buffer" not in param_state:
                        buf = param_state["momentum_buffer"] = torch.clone(d_p).detach()
                    else:
                        buf = param_state["momentum_buffer"]
                        buf.mul_(momentum).add_(d_p, alpha=1)
                    d_p = buf
                p.add_(d_p, alpha=-group["lr"])


# --- helpers ----------------------------------------------------------------------------------------

def leaves(*shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=torch.float64).requires_grad_() for s in shapes]


def assert_same_value_and_grad(ours_fn, reference_fn, inputs):
    ours = ours_fn(*inputs)
    ours_grads = torch.autograd.grad(ours, inputs, allow_unused=True)
    reference = reference_fn(*inputs)
    reference_grads = torch.autograd.grad(reference, inputs, allow_unused=True)
    torch.testing.assert_close(ours, reference, **TOL)
    for a, b in zip(ours_grads, reference_grads, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert b.abs().max() > 0
            torch.testing.assert_close(a, b, **TOL)


# --- tests ------------------------------------------------------------------------------------------

def test_nt_xent_is_solo_learn_simclr_loss():
    z1, z2 = leaves((6, 8), (6, 8))
    ids = torch.arange(6).repeat(2)
    assert_same_value_and_grad(lambda a, b: nt_xent(torch.cat([a, b]), ids, 0.2),
                               lambda a, b: reference_simclr(torch.cat([a, b]), ids, 0.2), [z1, z2])


def test_moco_queue_infonce_is_solo_learn_mocov2plus_loss_symmetrised():
    q1, q2 = leaves((6, 8), (6, 8))
    k1, k2 = (F.normalize(t, dim=1).detach() for t in leaves((6, 8), (6, 8), seed=1))
    queue = F.normalize(torch.randn(2, 8, 32, dtype=torch.float64), dim=1)

    def ours(a, b):
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
        return (moco_queue_infonce(a, k2, queue[1], 0.2) + moco_queue_infonce(b, k1, queue[0], 0.2)) / 2

    def reference(a, b):  # solo/methods/mocov2plus.py::training_step
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
        return (reference_mocov2plus(a, k2, queue[1], 0.2) + reference_mocov2plus(b, k1, queue[0], 0.2)) / 2

    assert_same_value_and_grad(ours, reference, [q1, q2])


def test_moco_v3_infonce_is_the_authors_contrastive_loss():
    q1, q2, k1, k2 = leaves((6, 8), (6, 8), (6, 8), (6, 8))
    k1, k2 = k1.detach(), k2.detach()
    assert_same_value_and_grad(lambda a, b: moco_v3_infonce(a, k2, 0.2) + moco_v3_infonce(b, k1, 0.2),
                               lambda a, b: reference_mocov3(a, k2, 0.2) + reference_mocov3(b, k1, 0.2), [q1, q2])


@pytest.mark.parametrize("ours, reference", [(byol_loss, reference_byol), (simsiam_loss, reference_simsiam)])
def test_negative_cosine_losses_are_the_unsimplified_reference(ours, reference):
    p, z = leaves((6, 8), (6, 8))
    assert_same_value_and_grad(ours, reference, [p, z])
    assert torch.autograd.grad(ours(p, z), z, allow_unused=True)[0] is None  # stop-gradient on the target


@pytest.mark.parametrize("num_crops, epoch", [(2, 0), (4, 3)])
def test_dino_loss_and_centre_are_the_authors_dinoloss(num_crops, epoch):
    student, teacher = leaves((num_crops * 5, 16), (2 * 5, 16))
    reference = ReferenceDINOLoss(16, num_crops, 0.04, 0.07, 5, 10)
    reference.center = torch.randn(1, 16, dtype=torch.float64)
    center = reference.center.clone()
    temp = teacher_temperature(epoch, 0.04, 0.07, 5, 10)
    assert temp == pytest.approx(reference.teacher_temp_schedule[epoch])
    assert_same_value_and_grad(lambda s, t: dino_loss(s, t, center, num_crops, 0.1, temp),
                               lambda s, t: reference(s, t, epoch), [student, teacher])
    ours_center = center * 0.9 + batch_center(teacher.detach()) * 0.1
    torch.testing.assert_close(ours_center, reference.center, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("clip_lr, exclude", [(True, True), (False, False)])
def test_lars_steps_are_solo_learns(clip_lr, exclude):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 3)).double()
    twin = [p.detach().clone().requires_grad_() for p in model.parameters()]
    kwargs = dict(lr=0.3, momentum=0.9, weight_decay=1e-4, eta=0.02, clip_lr=clip_lr, exclude_bias_n_norm=exclude)
    ours, reference = LARS(list(model.parameters()), **kwargs), ReferenceLARS(twin, **kwargs)
    for _ in range(3):
        grads = [torch.randn_like(p) for p in twin]
        for p, q, g in zip(model.parameters(), twin, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        reference.step()
    for p, q in zip(model.parameters(), twin, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)


def test_warmup_cosine_is_solo_learns_closed_form():
    """solo-learn solo/utils/lr_scheduler.py::LinearWarmupCosineAnnealingLR._get_closed_form_lr."""
    warmup, total, base, start, eta_min = 10, 50, 0.4, 3e-5, 0.0

    def reference(last_epoch):
        if last_epoch < warmup:
            return start + last_epoch * (base - start) / (warmup - 1)
        return eta_min + 0.5 * (base - eta_min) * (1 + math.cos(math.pi * (last_epoch - warmup) / (total - warmup)))

    for step in range(total):
        assert lr_at(step, total, warmup, base, eta_min, start) == pytest.approx(reference(step), rel=1e-12)
