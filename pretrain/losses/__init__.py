"""Self-supervised losses as pure functions, one module per loss family.

``resa`` (ReSA's Eq. 2 and its Sinkhorn assignment), ``nt_xent`` (SimCLR), ``moco`` (MoCo v2+
queue InfoNCE and MoCo v3 in-batch InfoNCE), ``cosine`` (BYOL / SimSiam negative cosine) and
``dino`` (DINO's centred, sharpened cross-entropy), ``swav`` (Sinkhorn codes, swapped prediction),
``deepclusterv2`` (spherical k-means, prototype cross-entropy), ``barlow`` (Barlow Twins),
``vicreg`` and ``whitening`` (W-MSE, CW-RGP, INTL). The ReSA names stay importable from
``pretrain.losses`` as before the split.
"""

from pretrain.losses.resa import (  # noqa: F401
    cosine_similarity_matrix,
    resa_loss,
    row_cross_entropy,
    sinkhorn,
    sinkhorn_distributed,
    symmetric_cross_entropy,
)
