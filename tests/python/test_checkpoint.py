"""phalanx.save / phalanx.load and phalanx.utils.checkpoint.Checkpoint.

Round trips of every dtype and value kind, atomic replacement, clear errors on truncated,
corrupted, foreign and missing files, chunked large tensors, and a training run that is
stopped, saved, restored into fresh objects and continued bit-for-bit.
"""

import math
import os
import pickle
import random
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import phalanx
import phalanx.nn.functional as F
from phalanx.utils.checkpoint import Checkpoint

DTYPES = ["float32", "float16", "bfloat16", "int64", "int32", "uint8", "bool"]
SHAPES = [(), (0,), (5,), (2, 0, 3), (2, 3, 4)]


def _make(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        arr = rng.random(shape) < 0.5
    elif dtype in ("float32", "float16", "bfloat16"):
        arr = (rng.standard_normal(shape) * 100).astype(np.float32)
    else:
        arr = rng.integers(0, 200, size=shape).astype(np.int64)
    return phalanx.tensor(arr, dtype=getattr(phalanx, dtype))


def _np(t):
    return (t.float() if t.dtype == phalanx.bfloat16 else t).numpy()


def _same_tensor(a, b):
    assert a.dtype == b.dtype
    assert tuple(a.shape) == tuple(b.shape)
    assert np.array_equal(_np(a), _np(b), equal_nan=a.dtype.is_floating_point)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "ckpt.phx")


# --- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_tensor_round_trip(path, dtype, shape):
    t = _make(dtype, shape)
    phalanx.save({"t": t}, path)
    out = phalanx.load(path)["t"]
    _same_tensor(out, t)
    assert out.is_contiguous()


def test_float_specials_in_tensors_keep_their_bits(path):
    arr = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45, 3.4e38], dtype=np.float32)
    phalanx.save(phalanx.tensor(arr), path)
    assert phalanx.load(path).numpy().tobytes() == arr.tobytes()


def test_non_contiguous_tensors_are_saved_contiguous(path):
    base = phalanx.arange(24, dtype=phalanx.float32).reshape(2, 3, 4)
    view = base.permute(2, 0, 1)[1:3]
    assert not view.is_contiguous()
    phalanx.save([view, base.transpose(0, 2)], path)
    a, b = phalanx.load(path)
    assert np.array_equal(a.numpy(), view.numpy())
    assert np.array_equal(b.numpy(), base.transpose(0, 2).numpy())


def test_requires_grad_survives(path):
    w = phalanx.randn(3, 2, requires_grad=True)
    phalanx.save({"w": w, "d": w.detach()}, path)
    out = phalanx.load(path)
    assert out["w"].requires_grad and out["w"].is_leaf
    assert not out["d"].requires_grad


def test_same_tensor_loads_shared_views_load_as_copies(path):
    t = phalanx.arange(6, dtype=phalanx.float32)
    view = t[2:4]
    phalanx.save({"a": t, "b": t, "v": view}, path)
    out = phalanx.load(path)
    assert out["a"] is out["b"]
    out["v"].fill_(-1.0)  # a copy: the loaded base is untouched
    assert np.array_equal(out["a"].numpy(), np.arange(6, dtype=np.float32))


def test_plain_values_round_trip(path):
    obj = {
        "none": None,
        "t": True,
        "f": False,
        "zero": 0,
        "neg": -7,
        "i64": [2**63 - 1, -(2**63)],
        "big": [2**100, -(3**90)],
        "pi": math.pi,
        "negzero": -0.0,
        "tiny": 5e-324,
        "inf": math.inf,
        "ninf": -math.inf,
        "nan": math.nan,
        "str": "héllo wörld ✓",
        "empty": "",
        "bytes": b"\x00\xffabc",
        "nobytes": b"",
        "list": [1, [2, [3, []]]],
        "tuple": (1, ("a", None), ()),
        "nested": {"a": {"b": {"c": [{"d": (phalanx.ones(2),)}]}}},
        "emptydict": {},
    }
    phalanx.save(obj, path)
    out = phalanx.load(path)
    assert list(out) == list(obj)
    for k in (
        "none",
        "t",
        "f",
        "zero",
        "neg",
        "i64",
        "big",
        "pi",
        "tiny",
        "inf",
        "ninf",
        "str",
        "empty",
        "bytes",
        "nobytes",
        "list",
        "tuple",
        "emptydict",
    ):
        assert out[k] == obj[k] and type(out[k]) is type(obj[k]), k
    assert type(out["t"]) is bool and type(out["zero"]) is int
    assert math.isnan(out["nan"])
    assert math.copysign(1.0, out["negzero"]) == -1.0
    assert isinstance(out["tuple"][1], tuple) and isinstance(out["list"][1], list)
    _same_tensor(out["nested"]["a"]["b"]["c"][0]["d"][0], phalanx.ones(2))


def test_top_level_scalars_and_tensor(path):
    for obj in (None, 3, "x", [phalanx.zeros(1)]):
        phalanx.save(obj, path)
        out = phalanx.load(path)
        assert type(out) is type(obj)


def test_int_keys_and_ordered_dict_order(path):
    sd = OrderedDict([("z", 1), ("a", 2), ("m", 3)])
    sd.move_to_end("z")  # OrderedDict order differs from insertion order now
    optim = {
        "state": {3: {"momentum_buffer": phalanx.ones(2)}, 0: {"step": 5}, -1: {}},
        "param_groups": [{"lr": 0.1, "params": [0, 3]}],
    }
    phalanx.save({"sd": sd, "optim": optim}, path)
    out = phalanx.load(path)
    assert type(out["sd"]) is dict
    assert list(out["sd"].items()) == [("a", 2), ("m", 3), ("z", 1)]
    assert list(out["optim"]["state"]) == [3, 0, -1]
    assert all(type(k) is int for k in out["optim"]["state"])
    assert out["optim"]["param_groups"] == [{"lr": 0.1, "params": [0, 3]}]


def test_numpy_scalars_load_as_python_numbers(path):
    phalanx.save({"a": np.float32(1.5), "b": np.int64(-3), "c": np.bool_(True)}, path)
    out = phalanx.load(path)
    assert out == {"a": 1.5, "b": -3, "c": True}
    assert type(out["a"]) is float and type(out["b"]) is int and type(out["c"]) is bool


def test_pathlike_and_bytes_paths(tmp_path):
    p = tmp_path / "p.phx"
    phalanx.save([1], p)
    assert phalanx.load(p) == [1]
    assert phalanx.load(os.fsencode(p)) == [1]
    assert phalanx.load(str(p), map_location="cpu", weights_only=True) == [1]


# --- unsupported values --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, type_name",
    [
        (object(), "object"),
        ({1, 2}, "set"),
        (np.zeros(3), "numpy.ndarray"),
        (1 + 2j, "complex"),
        (bytearray(b"x"), "bytearray"),
        (phalanx.float32, "dtype"),
    ],
)
def test_unsupported_value_names_type_and_path(path, value, type_name):
    with pytest.raises(TypeError) as e:
        phalanx.save({"model": {"layer": [1, value]}}, path)
    msg = str(e.value)
    assert type_name in msg and "obj['model']['layer'][1]" in msg, msg
    assert not os.path.exists(path)


@pytest.mark.parametrize("key", [(1, 2), True, 1.5, None, 2**64])
def test_unsupported_dict_key(path, key):
    with pytest.raises(TypeError, match=r"dict key .*obj\['a'\]"):
        phalanx.save({"a": {key: 1}}, path)


def test_deep_nesting_round_trips(path):
    obj = "leaf"
    for i in range(160):  # 240 levels: 80 x (dict, list), 80 tuples
        obj = {i: [obj]} if i % 2 else (obj,)
    phalanx.save(obj, path)
    assert phalanx.load(path) == obj


def test_tensor_subclass_loads_as_tensor(path):
    class Param(phalanx.Tensor):
        pass

    p = Param(phalanx.ones(3))
    phalanx.save({"p": p}, path)
    out = phalanx.load(path)["p"]
    assert type(out) is phalanx.Tensor
    _same_tensor(out, phalanx.ones(3))


def test_self_containing_list_is_refused(path):
    loop = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match=r"deeper than .* obj\[1\]\[1\]\[1\]\[1\]\.\.\.\[1\]"):
        phalanx.save(loop, path)


def test_file_objects_are_refused(path):
    with open(path, "wb") as f, pytest.raises(TypeError, match="file path"):
        phalanx.save([1], f)


# --- atomicity -------------------------------------------------------------------------------


def _dir_listing(path):
    return sorted(os.listdir(os.path.dirname(path)))


def test_failed_save_keeps_old_file_and_leaves_no_temp(path):
    phalanx.save({"version": 1}, path)
    before = open(path, "rb").read()
    # The tensors are already streamed into the temporary file when the bad value is met.
    bad = OrderedDict([("w", phalanx.randn(1000)), ("v", phalanx.randn(100)), ("oops", object())])
    with pytest.raises(TypeError):
        phalanx.save(bad, path, _chunk_bytes=64)
    assert open(path, "rb").read() == before
    assert _dir_listing(path) == ["ckpt.phx"]
    assert phalanx.load(path) == {"version": 1}


def test_failed_rename_leaves_no_temp(tmp_path):
    target = tmp_path / "is_a_dir"
    (target / "child").mkdir(parents=True)  # rename over a non-empty directory fails
    with pytest.raises(OSError, match="is_a_dir"):
        phalanx.save({"w": phalanx.ones(3)}, target)
    assert sorted(os.listdir(tmp_path)) == ["is_a_dir"]


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        phalanx.save([1], tmp_path / "nowhere" / "x.phx")


def test_overwrite_replaces_file(path):
    phalanx.save({"a": phalanx.ones(3)}, path)
    phalanx.save({"b": 2}, path)
    assert phalanx.load(path) == {"b": 2}
    assert _dir_listing(path) == ["ckpt.phx"]


# --- damaged and foreign files ----------------------------------------------------------------


def _sample(path, chunk=1 << 20):
    phalanx.save(
        {"w": phalanx.arange(64, dtype=phalanx.float32), "step": 3, "s": "abc"},
        path,
        _chunk_bytes=chunk,
    )
    return open(path, "rb").read()


@pytest.mark.parametrize("keep", [0, 5, 11, 12, 13, 20, 0.5, -40, -9, -1])
def test_truncated_file(path, keep):
    data = _sample(path)
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    open(path, "wb").write(data[:n])
    with pytest.raises(ValueError) as e:
        phalanx.load(path)
    msg = str(e.value)
    assert path in msg and ("truncated" in msg or "empty" in msg), msg


@pytest.mark.parametrize("where", [0, 3, 9, 12, 16, 40, 0.5, -30, -12, -5, -1])
def test_flipped_byte(path, where):
    data = bytearray(_sample(path))
    i = int(len(data) * where) if isinstance(where, float) else where % len(data)
    data[i] ^= 0x5A
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError) as e:
        phalanx.load(path)
    assert path in str(e.value)


def test_every_single_bit_flip_is_caught(path):
    data = _sample(path, chunk=100)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x01
        open(path, "wb").write(bytes(bad))
        with pytest.raises(ValueError):
            phalanx.load(path)


def test_trailing_garbage(path):
    data = _sample(path)
    open(path, "wb").write(data + b"\0")
    with pytest.raises(ValueError, match="after the footer"):
        phalanx.load(path)


def test_checksum_mismatch_message(path):
    data = bytearray(_sample(path))
    i = data.index(np.arange(64, dtype=np.float32)[7:9].tobytes())
    data[i] ^= 0x01  # inside tensor bytes: the records still parse, only the checksum tells
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        phalanx.load(path)


@pytest.mark.parametrize(
    "content, what",
    [
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10", "PNG"),
        (pickle.dumps({"a": 1}), "pickle"),
        (b"hello world, not a checkpoint", "68 65 6c 6c"),
        (b"\x93NUMPY\x01\x00v\x00", "npy"),
    ],
)
def test_foreign_file(path, content, what):
    open(path, "wb").write(content)
    with pytest.raises(ValueError) as e:
        phalanx.load(path)
    msg = str(e.value)
    assert path in msg and "not a phalanx checkpoint" in msg and what in msg, msg


def test_torch_style_zip_is_recognised(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="zip archive"):
        phalanx.load(path)


def test_empty_file(path):
    open(path, "wb").close()
    with pytest.raises(ValueError, match="is empty"):
        phalanx.load(path)


def test_newer_version_refused(path):
    data = bytearray(_sample(path))
    data[8] = 9
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match="version 9"):
        phalanx.load(path)


def test_missing_file(tmp_path):
    missing = str(tmp_path / "no_such.phx")
    with pytest.raises(FileNotFoundError) as e:
        phalanx.load(missing)
    assert missing in str(e.value) and e.value.errno == 2


def test_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        phalanx.load(tmp_path)


# --- large tensors: chunked records ---------------------------------------------------------


def test_chunked_tensors_round_trip(path):
    big = phalanx.randn(257, 129)  # 132,612 bytes; 1000-byte chunks: 133 records
    odd = phalanx.arange(1001, dtype=phalanx.int64)
    phalanx.save(
        {"big": big, "odd": odd, "flag": phalanx.ones(7, dtype=phalanx.bool)},
        path,
        _chunk_bytes=1000,
    )
    assert os.path.getsize(path) > big.numel() * 4 + 1001 * 8
    out = phalanx.load(path)
    _same_tensor(out["big"], big)
    _same_tensor(out["odd"], odd)
    # One chunk record cut off in the middle of a tensor is reported as truncation.
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        phalanx.load(path)


def test_chunk_size_is_bounded(path):
    with pytest.raises(ValueError, match="chunk size"):
        phalanx.save([phalanx.ones(2)], path, _chunk_bytes=0)


# --- Checkpoint helper ------------------------------------------------------------------------


class TinyModel:
    """Two linear layers with dropout between; parameters in an ordered dict."""

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        shapes = OrderedDict(w1=(16, 6), b1=(16,), w2=(3, 16), b2=(3,))
        self.params = OrderedDict()
        for k, s in shapes.items():
            arr = (rng.standard_normal(s) * 0.3).astype(np.float32)
            self.params[k] = phalanx.tensor(arr, requires_grad=True)

    def __call__(self, x):
        p = self.params
        h = F.dropout(F.relu(F.linear(x, p["w1"], p["b1"])), p=0.25)
        return F.linear(h, p["w2"], p["b2"])

    def state_dict(self):
        return OrderedDict((k, v.detach().clone()) for k, v in self.params.items())

    def load_state_dict(self, sd):
        with phalanx.no_grad():
            for k, v in self.params.items():
                v.copy_(sd[k])


class MomentumSGD:
    """SGD with momentum, state keyed by parameter index as torch.optim's is."""

    def __init__(self, params, lr=0.05, momentum=0.9):
        self.params, self.lr, self.momentum, self.state = list(params), lr, momentum, {}

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        with phalanx.no_grad():
            for i, p in enumerate(self.params):
                buf = self.state.get(i)
                if buf is None:
                    buf = self.state[i] = p.grad.clone()
                else:
                    buf.mul_(self.momentum).add_(p.grad)
                p.sub_(buf * self.lr)

    def state_dict(self):
        return {
            "state": {i: {"momentum_buffer": b.clone()} for i, b in self.state.items()},
            "param_groups": [
                {"lr": self.lr, "momentum": self.momentum, "params": list(range(len(self.params)))}
            ],
        }

    def load_state_dict(self, sd):
        self.state = {i: s["momentum_buffer"].clone() for i, s in sd["state"].items()}
        self.lr = sd["param_groups"][0]["lr"]
        self.momentum = sd["param_groups"][0]["momentum"]


class StepDecay:
    def __init__(self, opt, gamma=0.8):
        self.opt, self.gamma, self.last_epoch = opt, gamma, 0

    def step(self):
        self.last_epoch += 1
        self.opt.lr *= self.gamma

    def state_dict(self):
        return {"last_epoch": self.last_epoch, "gamma": self.gamma}

    def load_state_dict(self, sd):
        self.last_epoch, self.gamma = sd["last_epoch"], sd["gamma"]


class ShuffledLoader:
    """A data source whose position and order must survive a restart."""

    def __init__(self):
        self.data = np.random.default_rng(5).standard_normal((40, 6)).astype(np.float32)
        self.targets = np.random.default_rng(6).standard_normal((40, 3)).astype(np.float32)
        self.position = 0

    def next_batch(self):
        idx = [(self.position + k) % 40 for k in range(8)]
        random.shuffle(idx)  # Python's RNG
        self.position = (self.position + 8) % 40
        return phalanx.tensor(self.data[idx]), phalanx.tensor(self.targets[idx])

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, sd):
        self.position = sd["position"]


def _seed_all(seed):
    phalanx.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _fresh(seed):
    model = TinyModel(seed)
    opt = MomentumSGD(model.params.values())
    return model, opt, StepDecay(opt), ShuffledLoader()


def _train(model, opt, sched, loader, steps):
    for _ in range(steps):
        x, y = loader.next_batch()
        x = x + phalanx.randn(*x.shape) * 0.1  # phalanx's default generator
        x = x * float(1.0 + 0.1 * np.random.rand())  # numpy's global generator
        loss = F.mse_loss(model(x), y)  # dropout draws from phalanx's generator
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def _resume(path, rng=True):
    _seed_all(0)
    model, opt, sched, loader = _fresh(seed=1)
    _train(model, opt, sched, loader, 3)
    Checkpoint(path, model=model, optimizer=opt, scheduler=sched, loader=loader).save(
        step=2, epoch=0, note="half way"
    )
    _seed_all(12345)  # the resumed process starts from other random states and objects
    model, opt, sched, loader = _fresh(seed=99)
    meta = Checkpoint(
        path, model=model, optimizer=opt, scheduler=sched, loader=loader, rng=rng
    ).load()
    _train(model, opt, sched, loader, 3)
    return model, opt, meta


def test_resumed_training_is_bit_for_bit(path):
    _seed_all(0)
    straight, straight_opt, sched, loader = _fresh(seed=1)
    _train(straight, straight_opt, sched, loader, 6)

    resumed, resumed_opt, meta = _resume(path)
    assert meta == {"step": 2, "epoch": 0, "note": "half way"}
    for k, p in straight.params.items():
        assert np.array_equal(p.detach().numpy(), resumed.params[k].detach().numpy()), k
    for i, buf in straight_opt.state.items():
        assert np.array_equal(buf.numpy(), resumed_opt.state[i].numpy())
    assert straight_opt.lr == resumed_opt.lr

    # The generators matter: resuming without them diverges.
    diverged, _, _ = _resume(path, rng=False)
    assert not np.array_equal(
        straight.params["w1"].detach().numpy(), diverged.params["w1"].detach().numpy()
    )


def test_checkpoint_restores_rng_states(path):
    _seed_all(3)
    ckpt = Checkpoint(path)
    ckpt.save()
    expected = (phalanx.randn(4).numpy(), np.random.rand(4), [random.random() for _ in range(4)])
    np.random.standard_normal()  # leaves a cached gaussian in numpy's legacy state
    ckpt.load()
    got = (phalanx.randn(4).numpy(), np.random.rand(4), [random.random() for _ in range(4)])
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))


def test_checkpoint_directory_keeps_last(tmp_path):
    model = TinyModel(0)
    ckpt = Checkpoint(str(tmp_path / "run") + "/", model=model, keep_last=2)
    for step in (10, 20, 30):
        with phalanx.no_grad():
            model.params["b2"].fill_(float(step))
        ckpt.save(step=step, loss=0.5)
    assert sorted(os.listdir(tmp_path / "run")) == [
        "checkpoint-00000020.phx",
        "checkpoint-00000030.phx",
    ]
    assert ckpt.latest().endswith("checkpoint-00000030.phx")
    other = TinyModel(1)
    meta = Checkpoint(tmp_path / "run", model=other).load()  # an existing dir: directory mode
    assert meta == {"step": 30, "epoch": None, "loss": 0.5}
    assert np.array_equal(other.params["b2"].detach().numpy(), np.full(3, 30, np.float32))
    ckpt.save()  # without a step: numbered after the latest
    assert ckpt.latest().endswith("checkpoint-00000031.phx")


def test_checkpoint_errors(tmp_path):
    with pytest.raises(TypeError, match="loader=list has no state_dict"):
        Checkpoint(tmp_path / "c.phx", loader=[1, 2])
    with pytest.raises(ValueError, match="keep_last"):
        Checkpoint(tmp_path / "c.phx", keep_last=3)
    with pytest.raises(FileNotFoundError):
        Checkpoint(str(tmp_path / "empty") + "/").load()
    assert Checkpoint(tmp_path / "c.phx").latest() is None

    Checkpoint(tmp_path / "c.phx", model=TinyModel(0)).save(step=1)
    with pytest.raises(ValueError, match="no state for \\['optimizer'\\]"):
        Checkpoint(tmp_path / "c.phx", model=TinyModel(0), optimizer=MomentumSGD([])).load()
    phalanx.save({"model": 1}, tmp_path / "plain.phx")
    with pytest.raises(ValueError, match="not by Checkpoint"):
        Checkpoint(tmp_path / "plain.phx").load()


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda t: t.update(rng={}),
            r"lacks the generator state of \['phalanx', 'numpy', 'python'\]",
        ),
        (lambda t: t["rng"].pop("numpy"), r"lacks the generator state of \['numpy'\]"),
        (lambda t: t["rng"].update(phalanx=3), r"rng\['phalanx'\] should be bytes, got int 3"),
        (lambda t: t["rng"].update(numpy=(1, 2)), r"rng\['numpy'\] should be"),
        (lambda t: t["rng"].update(python=None), r"rng\['python'\] should be a 3-tuple"),
        (lambda t: t.update(rng=[1]), r"'rng' should be a dict of generator states, got list"),
        (lambda t: t.pop("state"), "it has no 'state' entry"),
        (lambda t: t.update(metadata=None), "'metadata' should be a dict, got NoneType"),
        (lambda t: t.update(version="1"), "'version' should be an int, got str '1'"),
    ],
)
def test_checkpoint_with_malformed_entries_is_refused_before_restoring(path, edit, message):
    # An empty rng entry used to raise KeyError: 'phalanx' after the model was already restored.
    model = TinyModel(0)
    Checkpoint(path, model=model).save(step=1)
    tree = phalanx.load(path)
    edit(tree)
    phalanx.save(tree, path)
    other = TinyModel(1)
    before = {k: v.detach().numpy().copy() for k, v in other.params.items()}
    with pytest.raises(ValueError, match=message) as info:
        Checkpoint(path, model=other).load()
    assert path in str(info.value)
    assert all(np.array_equal(before[k], v.detach().numpy()) for k, v in other.params.items())


def test_checkpoint_without_rng_loads_with_rng_false(path):
    Checkpoint(path, rng=False).save(step=2)
    with pytest.raises(ValueError, match="saved without generator states; pass rng=False"):
        Checkpoint(path).load()
    tree = phalanx.load(path)
    tree["rng"] = {}  # not restored, so not checked
    phalanx.save(tree, path)
    assert Checkpoint(path, rng=False).load()["step"] == 2


def test_checkpoint_unsupported_state_names_the_key(tmp_path):
    class Bad:
        def state_dict(self):
            return {"fine": 1, "handle": open}

        def load_state_dict(self, sd):
            pass

    target = tmp_path / "c.phx"
    with pytest.raises(TypeError, match=r"obj\['state'\]\['thing'\]\['handle'\]"):
        Checkpoint(target, thing=Bad()).save()
    assert os.listdir(tmp_path) == []
