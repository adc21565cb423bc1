"""InfoNCE ablation of ReSA: the same model, momentum and τ with the assignment fixed to A = I.

ReSA paper Section 4.1, Eq. 4: with ``A_H`` equal to the identity, Eq. 2 is exactly the
symmetric InfoNCE loss, so this baseline isolates the effect of the self-assignment. In the
official variant the identity is this rank's block of the ``B_local x B_global`` matrix.
"""

from __future__ import annotations

import torch

from pretrain.methods import register_method
from pretrain.methods.resa import ReSA


@register_method("infonce")
class InfoNCEAblation(ReSA):
    def assignment(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        rows, cols = source.shape[0], target.shape[0]
        offset = self.rank_offset(rows) if self.variant == "official" else 0
        eye = torch.zeros(rows, cols, dtype=torch.float32, device=source.device)
        eye[:, offset:offset + rows] = torch.eye(rows, device=source.device)
        return eye
