"""A few training steps of a method on fixed views, in the engine's order, for the method tests at toy size.

The method tests (MIRA, SwAV, Barlow Twins, VICReg, W-MSE, CW-RGP, INTL) check that the loss falls
on a fixed batch and that a method's own hooks act between steps (frozen prototypes, queues). The
steps follow ``pretrain/engine.py``'s training step: zero the gradients, backward, the method's
``before_optimizer_step`` (e.g. cancelling frozen prototypes' gradients), the optimiser step, then
``after_step`` with the training progress in (0, 1].
"""

from __future__ import annotations

import torch


def optimise(model, views, steps, lr=0.05):
    """``steps`` SGD steps (momentum 0.9) of ``model`` on ``views``; returns each step's loss."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    losses = []
    for step in range(steps):
        loss, _ = model(*views)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        model.before_optimizer_step()
        optimizer.step()
        model.after_step((step + 1) / steps)
        losses.append(loss.item())
    return losses
