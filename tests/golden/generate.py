"""Regenerate the golden files recording reference-framework outputs.

Usage (run with the python of the framework's throw-away venv, see README.md):

    /tmp/gold-chainer/bin/python tests/golden/generate.py chainer
    /tmp/gold-paddle/bin/python  tests/golden/generate.py paddle
    /tmp/gold-tf/bin/python      tests/golden/generate.py tf
    /tmp/gold-torch/bin/python   tests/golden/generate.py torch
    /tmp/gold-torch/bin/python   tests/golden/generate.py torch_half
    /tmp/gold-vision/bin/python  tests/golden/generate.py focal
    /tmp/gold-vision/bin/python  tests/golden/generate.py asl

Writes tests/golden/<fw>.npz (all arrays, inputs included) and
tests/golden/<fw>.json (case index).  Only numpy is used to build inputs, so
the same script works in every venv.  Each case draws from its own
``numpy.random.default_rng`` seeded from a CRC32 of the case name, so adding
or removing a case does not change the others.

The recorded gradient is d(sum(loss * g))/d(logits), where g is stored as an
input ("gy" / "dout" / "grad_loss" / "grad_output"), has the loss's shape
(0-d for scalar losses) and values in [0.5, 1.5].
"""

import json
import os
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_SEED = 20240
EXTREMES = [0.0, 1e-3, -1e-3, 30.0, -30.0, 88.0, -88.0, 1e4, -1e4]
DTYPES = ["float32", "float64"]
DT_SHORT = {"float32": "f32", "float64": "f64"}


def shape_str(shape):
    return "x".join(str(s) for s in shape) if len(shape) else "scalar"


def rng_for(name):
    return np.random.default_rng(BASE_SEED + zlib.crc32(name.encode("utf-8")))


def make_logits(rng, shape, dtype, huge=False):
    """N(0, 3) logits with a few extreme values planted at random positions."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    x = rng.normal(0.0, 3.0, size=n)
    if n:
        ext = [EXTREMES[i] for i in rng.permutation(len(EXTREMES))]
        if huge:
            big = float(np.finfo(dtype).max) / 4
            ext = [big, -big] + ext
        k = min(len(ext), max(1, n // 2))
        pos = rng.choice(n, size=k, replace=False)
        x[pos] = ext[:k]
    return x.reshape(shape).astype(dtype)


def make_g(rng, shape, dtype):
    return np.asarray(rng.uniform(0.5, 1.5, size=shape)).astype(dtype)


def _short(msg):
    msg = msg.strip().split("\n")[0]
    msg = msg.split(" Received ")[0]
    return msg[:300]


class Recorder:
    def __init__(self, framework, version):
        self.framework = framework
        self.version = version
        self.arrays = {}
        self.cases = []
        self.skipped = []
        self.names = set()

    def _key(self, name, arg):
        key = "%s__%s" % (name, arg)
        assert key not in self.arrays, key
        return key

    def add(self, name, params, inputs, outputs, tags=None):
        assert name not in self.names, name
        self.names.add(name)
        case = {"name": name, "params": params, "inputs": {}, "outputs": {}}
        for arg, arr in inputs.items():
            key = self._key(name, arg)
            self.arrays[key] = np.asarray(arr)
            case["inputs"][arg] = key
        for arg, arr in outputs.items():
            key = self._key(name, arg)
            self.arrays[key] = np.asarray(arr)
            case["outputs"][arg] = key
        tags = dict(tags or {})
        nonfinite = sorted(arg for arg, arr in outputs.items()
                           if np.asarray(arr).dtype.kind == "f"
                           and not np.all(np.isfinite(arr)))
        if nonfinite:
            tags["nonfinite_outputs"] = nonfinite
        if tags:
            case["tags"] = tags
        self.cases.append(case)

    def skip(self, name, params, exc, tags=None):
        entry = {"name": name, "params": params,
                 "error": "%s: %s" % (type(exc).__name__,
                                       _short(str(exc)))}
        if tags:
            entry["tags"] = tags
        self.skipped.append(entry)
        print("SKIPPED %s: %s" % (name, entry["error"]))

    def write(self):
        npz = os.path.join(HERE, self.framework + ".npz")
        js = os.path.join(HERE, self.framework + ".json")
        np.savez_compressed(npz, **self.arrays)
        doc = {"framework": self.framework, "version": self.version,
               "numpy": np.__version__, "cases": self.cases,
               "skipped": self.skipped}
        with open(js, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=False)
            f.write("\n")
        nonfinite = [k for k, v in self.arrays.items()
                     if v.dtype.kind == "f" and not np.all(np.isfinite(v))]
        print("wrote %s (%d cases, %d skipped, %d arrays)"
              % (npz, len(self.cases), len(self.skipped), len(self.arrays)))
        if nonfinite:
            print("non-finite arrays:", nonfinite)


# --------------------------------------------------------------------------
# chainer: F.sigmoid_cross_entropy(x, t, normalize=True, reduce='mean')
# --------------------------------------------------------------------------
def gen_chainer():
    import chainer
    import chainer.functions as F

    rec = Recorder("chainer", chainer.__version__)

    def run(name, x, t, normalize, reduce, tags=None, probe=False, rng=None):
        params = {"normalize": normalize, "reduce": reduce,
                  "dtype": str(x.dtype)}
        try:
            xv = chainer.Variable(x.copy())
            y = F.sigmoid_cross_entropy(xv, t, normalize=normalize,
                                        reduce=reduce)
            g = make_g(rng, y.shape, x.dtype)
            y.grad = g.copy()
            y.backward()
            gx = xv.grad
        except Exception as e:  # noqa: BLE001
            if not probe:
                raise
            rec.skip(name, params, e, tags)
            return None
        rec.add(name, params, {"x": x, "t": t, "gy": g},
                {"loss": np.asarray(y.array), "grad": np.asarray(gx)}, tags)
        return np.asarray(y.array)

    def labels(rng, shape):
        return rng.choice(np.array([-1, 0, 1], dtype=np.int32), size=shape,
                          p=[0.2, 0.4, 0.4]).astype(np.int32)

    shapes = [(4, 5), (3, 4, 5), (1, 1), (6, 1), (1, 7), (10,)]
    for dt in DTYPES:
        for shape in shapes:
            for normalize in (True, False):
                for reduce in ("mean", "no"):
                    name = "%s_%s_norm%d_%s" % (DT_SHORT[dt], shape_str(shape),
                                                normalize, reduce)
                    rng = rng_for("chainer/" + name)
                    x = make_logits(rng, shape, dt)
                    t = labels(rng, shape)
                    run(name, x, t, normalize, reduce, rng=rng,
                        tags={"shape": list(shape)}, probe=len(shape) == 1)
        # one case per dtype with +-finfo.max/4
        name = "%s_huge_4x5_norm1_no" % DT_SHORT[dt]
        rng = rng_for("chainer/" + name)
        x = make_logits(rng, (4, 5), dt, huge=True)
        run(name, x, labels(rng, (4, 5)), True, "no", rng=rng,
            tags={"shape": [4, 5], "huge": True})
        # everything ignored
        for normalize in (True, False):
            for reduce in ("mean", "no"):
                name = "%s_all_ignored_4x5_norm%d_%s" % (DT_SHORT[dt],
                                                         normalize, reduce)
                rng = rng_for("chainer/" + name)
                x = make_logits(rng, (4, 5), dt)
                t = np.full((4, 5), -1, dtype=np.int32)
                run(name, x, t, normalize, reduce, rng=rng,
                    tags={"shape": [4, 5], "all_ignored": True})
        # zero rows
        for normalize in (True, False):
            for reduce in ("mean", "no"):
                name = "%s_zero_rows_0x3_norm%d_%s" % (DT_SHORT[dt],
                                                       normalize, reduce)
                rng = rng_for("chainer/" + name)
                x = make_logits(rng, (0, 3), dt)
                t = labels(rng, (0, 3))
                run(name, x, t, normalize, reduce, rng=rng, probe=True,
                    tags={"shape": [0, 3]})

    # documentation example
    x = np.array([[-2.0, 3.0, 0.5], [5.0, 2.0, -0.5]], dtype=np.float32)
    t = np.array([[0, 1, 0], [1, 1, -1]], dtype=np.int32)
    expected = {True: 0.25664714, False: 0.64161783}
    for normalize in (True, False):
        for reduce in ("mean", "no"):
            name = "doc_example_norm%d_%s" % (normalize, reduce)
            y = run(name, x, t, normalize, reduce, rng=rng_for("chainer/" + name),
                    tags={"shape": [2, 3], "doc_example": True})
            if reduce == "mean":
                assert np.allclose(y, expected[normalize], rtol=1e-6), (name, y)
                print("%s = %r (expected %r)" % (name, float(y),
                                                 expected[normalize]))
    rec.write()


# --------------------------------------------------------------------------
# paddle: _C_ops.sigmoid_cross_entropy_with_logits(x, label, pos_weight,
#                                                  normalize, ignore_index)
# --------------------------------------------------------------------------
def gen_paddle():
    import paddle

    paddle.set_device("cpu")
    rec = Recorder("paddle", paddle.__version__)

    def run(name, x, label, normalize, ignore_index, rng, tags=None):
        params = {"normalize": normalize, "ignore_index": ignore_index,
                  "dtype": str(x.dtype)}
        xt = paddle.to_tensor(x.copy(), stop_gradient=False)
        lt = paddle.to_tensor(label.copy())
        out = paddle._C_ops.sigmoid_cross_entropy_with_logits(
            xt, lt, None, normalize, ignore_index)
        dout = make_g(rng, tuple(out.shape), x.dtype)
        (gx,) = paddle.grad([out], [xt], [paddle.to_tensor(dout.copy())])
        rec.add(name, params, {"x": x, "label": label, "dout": dout},
                {"loss": out.numpy(), "grad": gx.numpy()}, tags)

    def labels(rng, shape, dtype, ignore_index):
        lab = rng.uniform(0.0, 1.0, size=shape)
        u = rng.uniform(size=shape)
        lab[u < 0.1] = np.round(lab[u < 0.1])       # some exact 0 / 1
        lab[u > 0.8] = ignore_index                  # ~20% ignored
        return lab.astype(dtype)

    shapes = [(4, 5), (3, 4, 5), (1, 1), (10,)]
    for dt in DTYPES:
        for shape in shapes:
            for normalize in (True, False):
                for ii in (-100, -1):
                    name = "%s_%s_norm%d_ignore%d" % (DT_SHORT[dt],
                                                      shape_str(shape),
                                                      normalize, abs(ii))
                    rng = rng_for("paddle/" + name)
                    x = make_logits(rng, shape, dt)
                    run(name, x, labels(rng, shape, dt, ii), normalize, ii,
                        rng, tags={"shape": list(shape)})
        name = "%s_huge_4x5_norm0_ignore100" % DT_SHORT[dt]
        rng = rng_for("paddle/" + name)
        x = make_logits(rng, (4, 5), dt, huge=True)
        run(name, x, labels(rng, (4, 5), dt, -100), False, -100, rng,
            tags={"shape": [4, 5], "huge": True})
        for normalize in (True, False):
            name = "%s_all_ignored_4x5_norm%d_ignore100" % (DT_SHORT[dt],
                                                            normalize)
            rng = rng_for("paddle/" + name)
            x = make_logits(rng, (4, 5), dt)
            lab = np.full((4, 5), -100, dtype=dt)
            run(name, x, lab, normalize, -100, rng,
                tags={"shape": [4, 5], "all_ignored": True})
    rec.write()


# --------------------------------------------------------------------------
# tf: tf.compat.v1.losses.sigmoid_cross_entropy(multi_class_labels, logits,
#         weights, label_smoothing, reduction=...)
# --------------------------------------------------------------------------
def gen_tf():
    import tensorflow as tf

    rec = Recorder("tf", tf.__version__)
    R = tf.compat.v1.losses.Reduction
    reductions = [R.NONE, R.SUM, R.MEAN, R.SUM_OVER_BATCH_SIZE,
                  R.SUM_BY_NONZERO_WEIGHTS]

    def run(name, labels, logits, weights, ls, reduction, rng, tags=None,
            probe=False):
        params = {"label_smoothing": ls, "reduction": str(reduction),
                  "dtype": str(logits.dtype)}
        try:
            xt = tf.constant(logits)
            with tf.GradientTape() as tape:
                tape.watch(xt)
                loss = tf.compat.v1.losses.sigmoid_cross_entropy(
                    tf.constant(labels), xt, weights=tf.constant(weights),
                    label_smoothing=ls, reduction=reduction)
            g = make_g(rng, tuple(loss.shape), logits.dtype)
            gx = tape.gradient(loss, xt, output_gradients=tf.constant(g))
        except Exception as e:  # noqa: BLE001
            if not probe:
                raise
            rec.skip(name, params, e, tags)
            return
        rec.add(name, params,
                {"multi_class_labels": labels, "logits": logits,
                 "weights": weights, "grad_loss": g},
                {"loss": loss.numpy(), "grad": gx.numpy()}, tags)

    def make_weights(rng, kind, shape, dtype):
        nd = len(shape)
        if kind == "scalar1":
            return np.asarray(1.0, dtype=dtype)
        if kind == "scalar2.5":
            return np.asarray(2.5, dtype=dtype)
        if kind == "zeros":
            return np.zeros(shape, dtype=dtype)
        if kind == "full":
            wshape = shape
        elif kind == "col":       # (N, 1) / (N, M, 1)
            wshape = tuple(shape[:-1]) + (1,)
        elif kind == "row":       # (1, C) / (1, 1, C)
            wshape = (1,) * (nd - 1) + (shape[-1],)
        elif kind == "batch":     # (N, 1, ..., 1)
            wshape = (shape[0],) + (1,) * (nd - 1)
        else:
            raise ValueError(kind)
        w = rng.uniform(0.0, 2.0, size=wshape)
        if kind == "full":
            w[rng.uniform(size=wshape) < 0.2] = 0.0
        return w.astype(dtype)

    def make_labels(rng, shape, dtype, kind):
        if kind == "int":
            return rng.integers(0, 2, size=shape).astype(np.int32)
        return rng.uniform(0.0, 1.0, size=shape).astype(dtype)

    wkinds = ["scalar1", "scalar2.5", "full", "col", "row", "batch", "zeros"]
    red_short = {R.NONE: "none", R.SUM: "sum", R.MEAN: "mean",
                 R.SUM_OVER_BATCH_SIZE: "sobs",
                 R.SUM_BY_NONZERO_WEIGHTS: "sbnzw"}
    i = 0
    for dt in DTYPES:
        for wk in wkinds:
            for red in reductions:
                shape = (4, 5) if i % 2 == 0 else (2, 3, 4)
                ls = 0.0 if (i // 2) % 2 == 0 else 0.1
                lk = "float" if i % 3 == 0 else "int"
                i += 1
                name = "%s_%s_w%s_%s_ls%s_%slabels" % (
                    DT_SHORT[dt], shape_str(shape), wk, red_short[red],
                    "0" if ls == 0 else "01", lk)
                rng = rng_for("tf/" + name)
                logits = make_logits(rng, shape, dt)
                run(name, make_labels(rng, shape, dt, lk), logits,
                    make_weights(rng, wk, shape, dt), ls, red, rng,
                    tags={"shape": list(shape), "weights_kind": wk,
                          "labels_kind": lk})
        name = "%s_huge_4x5_wfull_none_ls0_intlabels" % DT_SHORT[dt]
        rng = rng_for("tf/" + name)
        logits = make_logits(rng, (4, 5), dt, huge=True)
        run(name, make_labels(rng, (4, 5), dt, "int"), logits,
            make_weights(rng, "full", (4, 5), dt), 0.0, R.NONE, rng,
            tags={"shape": [4, 5], "weights_kind": "full",
                  "labels_kind": "int", "huge": True})
        # probes: rank-1 weights (length batch size / length num classes)
        for wshape, wk in (((4,), "rank1_batch"), ((5,), "rank1_classes")):
            name = "%s_4x5_w%s_mean_ls0_intlabels" % (DT_SHORT[dt], wk)
            rng = rng_for("tf/" + name)
            logits = make_logits(rng, (4, 5), dt)
            w = rng.uniform(0.0, 2.0, size=wshape).astype(dt)
            run(name, make_labels(rng, (4, 5), dt, "int"), logits, w, 0.0,
                R.MEAN, rng, probe=True,
                tags={"shape": [4, 5], "weights_kind": wk,
                      "labels_kind": "int"})
    rec.write()


# --------------------------------------------------------------------------
# torch: F.binary_cross_entropy_with_logits(input, target, weight,
#                                           pos_weight=..., reduction=...)
# --------------------------------------------------------------------------
def gen_torch():
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    rec = Recorder("torch", torch.__version__)

    def run(name, x, target, weight, pos_weight, reduction, rng, tags=None):
        params = {"reduction": reduction, "dtype": str(x.dtype)}
        xt = torch.tensor(x, requires_grad=True)
        loss = F.binary_cross_entropy_with_logits(
            xt, torch.tensor(target),
            None if weight is None else torch.tensor(weight),
            pos_weight=None if pos_weight is None else torch.tensor(pos_weight),
            reduction=reduction)
        g = make_g(rng, tuple(loss.shape), x.dtype)
        (gx,) = torch.autograd.grad(loss, xt, grad_outputs=torch.tensor(g))
        inputs = {"input": x, "target": target}
        if weight is not None:
            inputs["weight"] = weight
        if pos_weight is not None:
            inputs["pos_weight"] = pos_weight
        inputs["grad_output"] = g
        rec.add(name, params, inputs,
                {"loss": loss.detach().numpy(), "grad": gx.numpy()}, tags)

    def make_weight(rng, kind, shape, dtype):
        if kind == "none":
            return None
        if kind == "full":
            wshape = shape
        elif kind == "col":
            wshape = tuple(shape[:-1]) + (1,)
        elif kind == "classes":
            wshape = (shape[-1],)
        else:
            raise ValueError(kind)
        w = rng.uniform(0.0, 2.0, size=wshape)
        w[rng.uniform(size=wshape) < 0.2] = 0.0
        return w.astype(dtype)

    def make_target(rng, shape, dtype, kind):
        if kind == "binary":
            return rng.integers(0, 2, size=shape).astype(dtype)
        return rng.uniform(0.0, 1.0, size=shape).astype(dtype)

    shapes = [(4, 5), (2, 3, 4), (1, 1)]
    i = 0
    for dt in DTYPES:
        for red in ("none", "mean", "sum"):
            for wk in ("none", "full", "col", "classes"):
                for pk in ("none", "classes"):
                    shape = shapes[i % 3]
                    tk = "binary" if (i // 3) % 2 == 0 else "float"
                    i += 1
                    name = "%s_%s_%s_w%s_pw%s_%stargets" % (
                        DT_SHORT[dt], shape_str(shape), red, wk, pk, tk)
                    rng = rng_for("torch/" + name)
                    x = make_logits(rng, shape, dt)
                    target = make_target(rng, shape, dt, tk)
                    weight = make_weight(rng, wk, shape, dt)
                    pw = (None if pk == "none" else
                          rng.uniform(0.5, 3.0, size=(shape[-1],)).astype(dt))
                    run(name, x, target, weight, pw, red, rng,
                        tags={"shape": list(shape), "weight_kind": wk,
                              "pos_weight_kind": pk, "target_kind": tk})
        name = "%s_huge_4x5_none_wfull_pwclasses_floattargets" % DT_SHORT[dt]
        rng = rng_for("torch/" + name)
        x = make_logits(rng, (4, 5), dt, huge=True)
        run(name, x, make_target(rng, (4, 5), dt, "float"),
            make_weight(rng, "full", (4, 5), dt),
            rng.uniform(0.5, 3.0, size=(5,)).astype(dt), "none", rng,
            tags={"shape": [4, 5], "weight_kind": "full",
                  "pos_weight_kind": "classes", "target_kind": "float",
                  "huge": True})
    rec.write()


# --------------------------------------------------------------------------
# torch_half: the same call on float16 and bfloat16 tensors (PyTorch's own half
# arithmetic).  Arrays are stored as their bits (uint16: NumPy has no bfloat16 of
# its own), params["dtype"] names the half; inputs are drawn in float64 and rounded.
# --------------------------------------------------------------------------
def gen_torch_half():
    import torch
    import torch.nn.functional as F

    rec = Recorder("torch_half", torch.__version__)
    halves = {"float16": torch.float16, "bfloat16": torch.bfloat16}

    def tensor(a, dtype):
        return torch.tensor(np.asarray(a, np.float32)).to(halves[dtype])

    def bits(t):
        return t.detach().view(torch.int16).numpy().view(np.uint16)

    for dt in halves:
        for red in ("none", "mean", "sum"):
            for wk, pk in (("none", "none"), ("full", "classes")):
                shape = (6, 37) if red == "none" else (3, 4, 50)
                name = "%s_%s_%s_w%s_pw%s" % (dt, shape_str(shape), red, wk, pk)
                rng = rng_for("torch_half/" + name)
                x = tensor(make_logits(rng, shape, "float32"), dt)
                x.requires_grad_()
                target = tensor(rng.uniform(0.0, 1.0, size=shape), dt)
                weight = None if wk == "none" else tensor(rng.uniform(0, 2, size=shape), dt)
                pw = None if pk == "none" else tensor(rng.uniform(0.5, 3, size=shape[-1:]), dt)
                loss = F.binary_cross_entropy_with_logits(x, target, weight,
                                                          pos_weight=pw, reduction=red)
                g = tensor(make_g(rng, tuple(loss.shape), "float32"), dt)
                (gx,) = torch.autograd.grad(loss, x, grad_outputs=g)
                inputs = {"input": x, "target": target, "grad_output": g}
                if weight is not None:
                    inputs["weight"] = weight
                if pw is not None:
                    inputs["pos_weight"] = pw
                rec.add(name, {"reduction": red, "dtype": dt},
                        {k: bits(v) for k, v in inputs.items()},
                        {"loss": bits(loss), "grad": bits(gx)},
                        {"shape": list(shape)})
    rec.write()


# --------------------------------------------------------------------------
# focal: torchvision.ops.sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction),
# and asl: timm's AsymmetricLossMultiLabel (the ASL paper's reference, gradient
# through the focusing weight: disable_torch_grad_focal_loss=False), loss summed.
# Both with their autograd gradient.  timm computes in float32 whatever the input.
# --------------------------------------------------------------------------
def _focusing_cases(prefix):
    """(name, rng, x, targets) over dtypes, shapes, target kinds and one huge case."""
    for dt in DTYPES:
        for shape, tk in (((4, 5), "binary"), ((3, 7), "float"), ((2, 3, 4), "binary"),
                          ((1, 1), "float")):
            name = "%s_%s_%stargets" % (DT_SHORT[dt], shape_str(shape), tk)
            rng = rng_for(prefix + name)
            x = make_logits(rng, shape, dt)
            t = (rng.integers(0, 2, size=shape) if tk == "binary"
                 else rng.uniform(0.0, 1.0, size=shape)).astype(dt)
            yield name, rng, x, t, {"shape": list(shape), "target_kind": tk}
        name = "%s_huge_4x5_floattargets" % DT_SHORT[dt]
        rng = rng_for(prefix + name)
        yield (name, rng, make_logits(rng, (4, 5), dt, huge=True),
               rng.uniform(0.0, 1.0, size=(4, 5)).astype(dt),
               {"shape": [4, 5], "target_kind": "float", "huge": True})


def gen_focal():
    import torch
    import torchvision
    from torchvision.ops import sigmoid_focal_loss

    rec = Recorder("focal", "torchvision %s, torch %s" % (torchvision.__version__,
                                                          torch.__version__))
    for base, rng, x, t, tags in _focusing_cases("focal/"):
        for alpha, gamma, reduction in ((0.25, 2.0, "none"), (-1.0, 0.5, "sum"),
                                        (0.6, 3.7, "mean"), (0.25, 0.0, "none")):
            name = "%s_a%s_g%s_%s" % (base, alpha, gamma, reduction)
            xt = torch.tensor(x, requires_grad=True)
            loss = sigmoid_focal_loss(xt, torch.tensor(t), alpha, gamma, reduction)
            g = make_g(rng, tuple(loss.shape), x.dtype)
            (gx,) = torch.autograd.grad(loss, xt, grad_outputs=torch.tensor(g))
            rec.add(name, {"alpha": alpha, "gamma": gamma, "reduction": reduction,
                           "dtype": str(x.dtype)},
                    {"inputs": x, "targets": t, "grad_output": g},
                    {"loss": loss.detach().numpy(), "grad": gx.numpy()}, tags)
    rec.write()


def gen_asl():
    import timm
    import torch
    from timm.loss import AsymmetricLossMultiLabel

    rec = Recorder("asl", "timm %s, torch %s" % (timm.__version__, torch.__version__))
    for base, rng, x, t, tags in _focusing_cases("asl/"):
        for gamma_neg, gamma_pos, clip, eps in ((4.0, 1.0, 0.05, 1e-8), (2.5, 0.5, None, 1e-8),
                                                (0.0, 0.0, 0.2, 0.0)):
            name = "%s_gn%s_gp%s_c%s_e%s" % (base, gamma_neg, gamma_pos, clip, eps)
            loss_fn = AsymmetricLossMultiLabel(gamma_neg, gamma_pos, clip, eps,
                                               disable_torch_grad_focal_loss=False,
                                               reduction="sum")
            xt = torch.tensor(x, requires_grad=True)
            loss = loss_fn(xt, torch.tensor(t))
            g = make_g(rng, (), np.float32)
            (gx,) = torch.autograd.grad(loss, xt, grad_outputs=torch.tensor(g))
            rec.add(name, {"gamma_neg": gamma_neg, "gamma_pos": gamma_pos, "clip": clip,
                           "eps": eps, "reduction": "sum", "dtype": str(x.dtype)},
                    {"x": x, "y": t, "grad_output": g},
                    {"loss": loss.detach().numpy(), "grad": gx.numpy()}, tags)
    rec.write()


GENERATORS = {"chainer": gen_chainer, "paddle": gen_paddle, "tf": gen_tf,
              "torch": gen_torch, "torch_half": gen_torch_half, "focal": gen_focal,
              "asl": gen_asl}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in GENERATORS:
        sys.exit("usage: generate.py {%s}" % "|".join(GENERATORS))
    GENERATORS[sys.argv[1]]()
