"""What both benchmarks (CPU and GPU) time: the bytes an op must move, and the PyTorch peer."""


def bytes_moved(op, shape, itemsize):
    """Bytes the op must read plus write (inputs once, outputs once)."""
    rows, n = shape
    elems = rows * n
    reads = 2 * elems + (rows if op != "forward" else 0)  # x, z (+ grad_out)
    writes = (rows if op != "gradient" else 0) + (elems if op != "forward" else 0)
    return (reads + writes) * itemsize


def bce_row_mean_ops(torch):
    """The PyTorch peer: ``forward``, ``gradient`` and ``fused`` of
    ``BCEWithLogits(reduction='none').mean(-1)``, what a PyTorch user writes for the op.

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
