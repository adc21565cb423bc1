"""InfoNCE ablation of ReSA: the same model, momentum and τ with the assignment fixed to A = I.

ReSA paper Section 4.1, Eq. 4: with ``A_H`` equal to the identity, Eq. 2 is exactly the
symmetric InfoNCE loss, so this baseline isolates the effect of the self-assignment.
"""

from __future__ import annotations

import torch

from pretrain.methods import register_method
from pretrain.methods.resa import ReSA


@register_method("infonce")
class InfoNCEAblation(ReSA):
    def assignment(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.eye(source.shape[0], dtype=torch.float32, device=source.device)
