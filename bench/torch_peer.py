"""The PyTorch peer both benchmarks time: what a PyTorch user writes for the Caffe2 op."""


def bce_row_mean_ops(torch):
    """``forward``, ``gradient`` and ``fused`` of ``BCEWithLogits(reduction='none').mean(-1)``.

    Each takes ``(x, z, g)`` tensors; the gradient is ``torch.autograd.grad`` of the row
    means with ``g`` as their incoming gradient (it runs the forward too: autograd can't
    skip it).
    """
    F = torch.nn.functional

    def forward(x, z, g):
        return F.binary_cross_entropy_with_logits(x, z, reduction="none").mean(-1)

    def fused(x, z, g):
        x = x.detach().requires_grad_()
        loss = forward(x, z, g)
        (grad,) = torch.autograd.grad(loss, x, g)
        return loss.detach(), grad

    return {"forward": forward, "gradient": lambda x, z, g: fused(x, z, g)[1], "fused": fused}
