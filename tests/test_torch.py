"""numba_xent.torch: autograd through the fused kernels (skipped without torch)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nxt = pytest.importorskip("numba_xent.torch")

F = torch.nn.functional
gen = torch.Generator().manual_seed(0)
X = torch.randn(6, 5, generator=gen, dtype=torch.float64) * 3
Z = torch.rand(6, 5, generator=gen, dtype=torch.float64)
W = torch.rand(6, 5, generator=gen, dtype=torch.float64)
PW = torch.rand(5, generator=gen, dtype=torch.float64) + 0.5
T = torch.randint(-1, 2, (6, 5), generator=gen)

LOSSES = {
    "general mean": lambda x: nxt.sigmoid_cross_entropy(x, Z, W, pos_weight=PW),
    "general none": lambda x: nxt.sigmoid_cross_entropy(x, Z, reduction="none"),
    "general row_mean ignore": lambda x: nxt.sigmoid_cross_entropy(
        x, torch.where(T < 0, -1.0, Z), ignore_index=-1, reduction="row_mean"),
    "caffe2": lambda x: nxt.caffe2_sigmoid_cross_entropy_with_logits(x, Z),
    "caffe2 log-D": lambda x: nxt.caffe2_sigmoid_cross_entropy_with_logits(x, Z,
                                                                           log_d_trick=True),
    "caffe2 weighted": lambda x: nxt.caffe2_weighted_sigmoid_cross_entropy_with_logits(x, Z, W),
    "chainer": lambda x: nxt.chainer_sigmoid_cross_entropy(x, T),
    "chainer no": lambda x: nxt.chainer_sigmoid_cross_entropy(x, T, reduce="no"),
    "paddle": lambda x: nxt.paddle_sigmoid_cross_entropy_with_logits(x, Z, normalize=True),
    "tf": lambda x: nxt.tf_sigmoid_cross_entropy(Z > 0.5, x, W, label_smoothing=0.1),
}


@pytest.mark.parametrize("name", LOSSES)
def test_gradcheck_in_float64(name):
    x = X.clone().requires_grad_()
    assert torch.autograd.gradcheck(LOSSES[name], (x,), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_bce_with_logits_forward_and_backward(reduction):
    x1, x2 = X.clone().requires_grad_(), X.clone().requires_grad_()
    ours = nxt.SigmoidCrossEntropyLoss(W, reduction, PW)(x1, Z)
    theirs = torch.nn.BCEWithLogitsLoss(W, reduction=reduction, pos_weight=PW)(x2, Z)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
    g = torch.rand(ours.shape, generator=gen, dtype=torch.float64)
    ours.backward(g)
    theirs.backward(g)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-12, atol=1e-14)


def test_modules_cover_every_front_end():
    x = X.float().requires_grad_()
    z, w = Z.float(), W.float()
    losses = [
        nxt.Caffe2SigmoidCrossEntropyWithLogits(unjoined_lr_loss=True)(x, z).sum(),
        nxt.Caffe2WeightedSigmoidCrossEntropyWithLogits()(x, z, w).sum(),
        nxt.ChainerSigmoidCrossEntropy(normalize=False)(x, T),
        nxt.PaddleSigmoidCrossEntropyWithLogits(ignore_index=-1)(x, z).mean(),
        nxt.TFSigmoidCrossEntropy(reduction="weighted_mean")(z > 0.5, x, w),
    ]
    sum(losses).backward()
    assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()


def train(loss_fn, steps=60):
    torch.manual_seed(0)
    true_w = torch.randn(20, 8)
    features = torch.randn(512, 20)
    labels = (features @ true_w > 0).float()
    model = torch.nn.Linear(20, 8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(features), labels)
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return history


def test_a_training_loop_learns_as_with_torchs_own_loss():
    ours = train(nxt.SigmoidCrossEntropyLoss())
    theirs = train(torch.nn.BCEWithLogitsLoss())
    assert ours[-1] < 0.6 * ours[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)


def test_logits_must_be_a_tensor():
    with pytest.raises(TypeError, match="logits must be a torch.Tensor"):
        nxt.sigmoid_cross_entropy(np.zeros(3), np.zeros(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_stay_on_the_device():
    x = X.cuda().requires_grad_()
    loss = nxt.sigmoid_cross_entropy(x, Z.cuda(), reduction="sum")
    loss.backward()
    assert loss.device == x.device and x.grad.device == x.device
    ref = F.binary_cross_entropy_with_logits(X, Z, reduction="sum")
    torch.testing.assert_close(loss.cpu(), ref, rtol=1e-12, atol=0)


def launched_keys(monkeypatch):
    """The kernel keys the CPU backend launches, in order (every call through the
    runner: a replay launches no key)."""
    from numba_xent import cpu

    keys, launch = [], cpu.launch
    monkeypatch.setattr(cpu, "replays", False)
    monkeypatch.setattr(cpu, "launch", lambda key, *args: keys.append(key) or launch(key, *args))
    return keys


@pytest.mark.parametrize("name", LOSSES)
def test_one_fused_pass_and_no_gradient_when_none_is_needed(monkeypatch, name):
    keys = launched_keys(monkeypatch)
    LOSSES[name](X.clone().requires_grad_())
    fused = [k for k in keys if not k.count]  # a count pass may come first (divisors)
    assert len(fused) == 1 and fused[0].grad and (fused[0].rows or fused[0].elem)
    keys.clear()
    LOSSES[name](X.clone())
    assert keys and not any(k.grad for k in keys)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_half_tensors_give_half_results_as_the_numpy_front_end_does(dtype, reduction):
    """float16 and bfloat16 tensors (bfloat16 through an ml_dtypes view of its memory):
    the loss and the gradient in the tensor's dtype, bit for bit what the NumPy front end
    returns on the same values, and within a half's rounding of PyTorch's float32 BCE."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = (X * 2).to(dtype).requires_grad_()
    z, pw = Z.to(dtype), PW.to(dtype)
    loss = nxt.sigmoid_cross_entropy(x, z, pos_weight=pw, reduction=reduction)
    loss.sum().backward()
    assert loss.dtype == x.grad.dtype == dtype
    np_dtype = np.float16 if dtype == torch.float16 else ml_dtypes.bfloat16

    def as_numpy(t):
        return t.detach().float().numpy().astype(np_dtype)

    import numba_xent as nx

    expected, grad = nx.sigmoid_cross_entropy_and_grad(
        as_numpy(x), as_numpy(z), pos_weight=as_numpy(pw), reduction=reduction)
    assert np.array_equal(as_numpy(loss).view(np.int16), expected.view(np.int16))
    assert np.array_equal(as_numpy(x.grad).view(np.int16), grad.view(np.int16))
    reference = F.binary_cross_entropy_with_logits(
        x.detach().float(), z.float(), pos_weight=pw.float(), reduction=reduction)
    info = torch.finfo(dtype)  # half an ulp of rounding: relative, or absolute if subnormal
    assert torch.allclose(loss.float(), reference, rtol=info.eps, atol=info.tiny * info.eps)


# -- the registered operators (what torch.compile sees) ------------------------------

def operator_calls(monkeypatch):
    """Run the losses through their registered operators (as under torch.compile), eagerly:
    returns the list of (operator, arguments) calls made."""
    calls = []
    compiled = nxt._compiled

    def recording(op, *rest):
        def call(*args):
            calls.append((op, args))
            return op(*args)

        call._qualname = op._qualname
        return compiled(call, *rest)

    monkeypatch.setattr(nxt, "_compiled", recording)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    return calls


@pytest.mark.parametrize("name", LOSSES)
def test_the_operator_gives_the_eager_paths_losses_and_gradients(monkeypatch, name):
    x = X.clone().requires_grad_()
    eager = LOSSES[name](x)
    (eager_grad,) = torch.autograd.grad(eager.sum(), x)
    calls = operator_calls(monkeypatch)
    loss = LOSSES[name](x)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    assert len(calls) == 1 and calls[0][1][3] is True  # one call, the gradient wanted
    assert torch.equal(loss, eager) and torch.equal(grad, eager_grad)
    with torch.no_grad():
        assert torch.equal(LOSSES[name](x), eager)
    assert calls[1][1][3] is False  # no gradient made where none can be asked for


@pytest.mark.parametrize("name", LOSSES)
def test_opcheck_passes_for_every_loss(monkeypatch, name):
    calls = operator_calls(monkeypatch)
    LOSSES[name](X.clone().requires_grad_())
    ((op, (x, tensors, options, _)),) = calls
    for want_grad in (True, False):  # without it, backward makes the gradient itself
        result = torch.library.opcheck(op, (x, tensors, options, want_grad))
        assert set(result.values()) == {"SUCCESS"}, result


def test_a_model_compiles_whole_with_the_same_losses_and_gradients():
    """torch.compile(fullgraph=True): the loss is one operator in the graph, with the
    eager mode's loss and gradients."""
    gen = torch.Generator().manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(),
                                torch.nn.Linear(16, 4)).double()
    losses = [nxt.SigmoidCrossEntropyLoss(pos_weight=PW[:4] * 2, label_smoothing=0.1),
              nxt.TFSigmoidCrossEntropy(label_smoothing=0.2)]
    x = torch.randn(32, 8, generator=gen, dtype=torch.float64)
    z = torch.rand(32, 4, generator=gen, dtype=torch.float64)

    def step(x, z):
        logits = model(x)
        return losses[0](logits, z) + losses[1](z > 0.5, logits)

    results = []
    for fn in (step, torch.compile(step, fullgraph=True)):
        model.zero_grad()
        loss = fn(x, z)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (eager, eager_grads), (compiled, compiled_grads) = results
    torch.testing.assert_close(compiled, eager, rtol=1e-14, atol=0)
    for g, e in zip(compiled_grads, eager_grads, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("pw_shape", [(5,), (1, 5), (6, 1), (6, 5)])
def test_pos_weight_and_weight_broadcast_as_in_bce_with_logits_loss(pw_shape):
    """``SigmoidCrossEntropyLoss`` takes every ``weight`` and ``pos_weight`` that
    ``BCEWithLogitsLoss`` takes (a (6, 5) pos_weight included)."""
    pw = torch.rand(*pw_shape, generator=gen, dtype=torch.float64) + 0.5
    w = torch.rand(6, 1, generator=gen, dtype=torch.float64)
    x = X.clone().requires_grad_()
    loss = nxt.SigmoidCrossEntropyLoss(weight=w, pos_weight=pw)(x, Z)
    loss.backward()
    x_ref = X.clone().requires_grad_()
    reference = torch.nn.BCEWithLogitsLoss(weight=w, pos_weight=pw)(x_ref, Z)
    reference.backward()
    torch.testing.assert_close(loss, reference, rtol=1e-13, atol=0)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-12, atol=1e-17)
    with pytest.raises(ValueError, match=r"targets must have shape \(6, 5\), got \(6, 4\)"):
        nxt.SigmoidCrossEntropyLoss()(x, Z[:, :4])
