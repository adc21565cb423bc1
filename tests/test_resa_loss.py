"""The ReSA loss and Sinkhorn against direct transcriptions of the paper (Eq. 2, Appendix B.2)."""

import pytest
import torch
import torch.nn.functional as F

from pretrain.losses import cosine_similarity_matrix, resa_loss, sinkhorn, symmetric_cross_entropy


def b2_sinkhorn(scores, eps=0.05, niters=3):
    """Appendix B.2 ``sinkhorn``, transcribed line by line."""
    Q = torch.exp(scores / eps).T
    Q /= Q.sum()
    m, _ = Q.shape
    c = torch.ones(m, dtype=Q.dtype) / m
    for _ in range(niters):
        u = Q.sum(dim=1)
        Q *= (c / u).unsqueeze(1)
        Q *= (c / Q.sum(dim=0)).unsqueeze(0)
    return (Q / Q.sum(dim=0, keepdim=True)).T


def b2_cross_entropy(x, y):
    """Appendix B.2 ``cross_entropy``: a mean over all m x m entries."""
    loss = torch.mean(y * F.log_softmax(x, dim=1) + y.T * F.log_softmax(x.T, dim=1))
    return -loss / 2


def b2_loss(z1, z2, z1m, z2m, assign, temp=0.4):
    loss = b2_cross_entropy(cosine_similarity_matrix(z1, z2m) / temp, assign) + \
        b2_cross_entropy(cosine_similarity_matrix(z2, z1m) / temp, assign)
    return loss / 2


def eq2(Z, Zp, A, tau):
    """Eq. 2 with explicit sums: -(1/2m)(sum A o log D(Z^T Z') + sum A^T o log D(Z'^T Z))."""
    m = Z.shape[0]
    Z, Zp = F.normalize(Z, dim=1), F.normalize(Zp, dim=1)
    S = Z @ Zp.T / tau
    total = 0.0
    for i in range(m):
        for j in range(m):
            log_d = S[i, j] - torch.logsumexp(S[i], dim=0)
            log_dt = S.T[i, j] - torch.logsumexp(S.T[i], dim=0)
            total = total + A[i, j] * log_d + A.T[i, j] * log_dt
    return -total / (2 * m)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    m, d = 12, 16
    return [torch.randn(m, d, generator=g, dtype=torch.float64) for _ in range(5)]


def test_sinkhorn_equals_b2_transcription(batch):
    h, hm = batch[0], batch[1]
    scores = cosine_similarity_matrix(h, hm)
    torch.testing.assert_close(sinkhorn(scores), b2_sinkhorn(scores))  # fp64 in, fp64 out (tighter than fp32)


def test_sinkhorn_rows_sum_to_one_and_runs_in_fp32(batch):
    scores = cosine_similarity_matrix(batch[0], batch[1]).half()
    assign = sinkhorn(scores)
    assert assign.dtype == torch.float32
    torch.testing.assert_close(assign.sum(dim=1), torch.ones(len(assign)), rtol=0, atol=1e-5)
    assert (assign >= 0).all()


def test_raising_one_score_never_lowers_its_assignment(batch):
    scores = cosine_similarity_matrix(batch[0], batch[1])
    base = sinkhorn(scores)
    for i, j in [(0, 0), (3, 7), (11, 2)]:
        for delta in (0.01, 0.1, 0.5):
            raised = scores.clone()
            raised[i, j] += delta
            assert sinkhorn(raised)[i, j] >= base[i, j]


def test_loss_is_eq2_and_m_times_b2_pseudocode(batch):
    z1, z2, z1m, z2m, h = batch
    m = z1.shape[0]
    assign = sinkhorn(cosine_similarity_matrix(h, h + 0.1 * z1))
    ours = resa_loss(z1, z2, z1m, z2m, assign, temperature=0.4)
    torch.testing.assert_close(ours, m * b2_loss(z1, z2, z1m, z2m, assign))
    expected = (eq2(z1, z2m, assign, 0.4) + eq2(z2, z1m, assign, 0.4)) / 2
    torch.testing.assert_close(ours, expected)


def test_without_momentum_the_loss_is_exactly_eq2_on_z1_z2(batch):
    z1, z2, _, _, h = batch
    assign = sinkhorn(cosine_similarity_matrix(h, h))
    torch.testing.assert_close(resa_loss(z1, z2, z1, z2, assign, 0.4), eq2(z1, z2, assign, 0.4))


def test_identity_assignment_is_symmetric_infonce(batch):
    z1, z2 = batch[0], batch[1]
    m, tau = z1.shape[0], 0.4
    logits = cosine_similarity_matrix(z1, z2) / tau
    infonce = (F.cross_entropy(logits, torch.arange(m)) + F.cross_entropy(logits.T, torch.arange(m))) / 2
    torch.testing.assert_close(symmetric_cross_entropy(logits, torch.eye(m, dtype=z1.dtype)), infonce)


def test_infonce_method_is_resa_with_identity_assignment():
    from pretrain.config import SCHEMA
    from pretrain.methods import build_method
    from pretrain.models import build_backbone

    torch.manual_seed(0)
    config = {**SCHEMA, "model": {**SCHEMA["model"], "projector_hidden_dim": 64, "projector_out_dim": 32}}
    resa = build_method("resa", config, build_backbone("resnet18"))
    infonce = build_method("infonce", config, build_backbone("resnet18"))
    infonce.load_state_dict(resa.state_dict())
    weak, standard = torch.randn(6, 3, 32, 32), torch.randn(6, 3, 32, 32)
    assert torch.equal(infonce.assignment(weak.flatten(1), weak.flatten(1)), torch.eye(6))
    resa.assignment = lambda source, target: torch.eye(source.shape[0])
    torch.testing.assert_close(resa(weak, standard)[0], infonce(weak, standard)[0])
