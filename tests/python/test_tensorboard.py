"""phalanx.utils.tensorboard.SummaryWriter: the event files it writes, read back with
TensorBoard's own EventAccumulator, hold what was added; histograms are the records
torch.utils.tensorboard makes of the same values; without tensorboard, a clear ImportError."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
from _spawn import run_python

import phalanx

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

from phalanx.utils.tensorboard import SummaryWriter  # noqa: E402


def load(log_dir) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars_text_and_context_manager(tmp_path):
    with SummaryWriter(str(tmp_path)) as w:
        for step in range(3):
            w.add_scalar("loss/train", phalanx.tensor(1.0 / (step + 1)), step)
        w.add_scalar("lr", np.float32(0.5), global_step=7, walltime=1234.5)
        w.add_scalar("acc", 0.9)  # no step: step 0
        w.add_text("notes", "lr 0.5, **bold**", 2)
    assert len(glob.glob(str(tmp_path / "events.out.tfevents.*"))) == 1
    acc = load(tmp_path)
    loss = acc.Scalars("loss/train")
    assert [e.step for e in loss] == [0, 1, 2]
    np.testing.assert_allclose([e.value for e in loss], [1.0, 0.5, 1 / 3], rtol=1e-6)
    (lr,) = acc.Scalars("lr")
    assert (lr.step, lr.value, lr.wall_time) == (7, 0.5, 1234.5)
    assert acc.Scalars("acc")[0].step == 0
    (text,) = acc.Tensors("notes/text_summary")
    assert text.step == 2
    assert text.tensor_proto.string_val == [b"lr 0.5, **bold**"]
    assert acc.summary_metadata["notes/text_summary"].plugin_data.plugin_name == "text"


def test_add_scalars_writes_one_run_per_key(tmp_path):
    w = SummaryWriter(str(tmp_path))
    for step in range(2):
        w.add_scalars("loss", {"train": 1.0 + step, "test": 2.0 + step}, step)
    w.close()
    for key, first in (("train", 1.0), ("test", 2.0)):
        acc = load(tmp_path / f"loss_{key}")
        assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(0, first), (1, first + 1)]


@pytest.mark.parametrize("bins", ["tensorflow", 10, "auto"])
def test_histogram_matches_torch(tmp_path, bins):
    values = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    with SummaryWriter(str(tmp_path / "px")) as w:
        w.add_histogram("w", phalanx.tensor(values), 3, bins=bins)
        w.add_histogram("few", values, 4, bins=bins, max_bins=4)
    (h,) = load(tmp_path / "px").Histograms("w")
    assert h.step == 3
    hv = h.histogram_value
    assert (hv.min, hv.max, hv.num) == pytest.approx((values.min(), values.max(), 1000), rel=1e-6)
    assert hv.sum == pytest.approx(values.astype(np.float64).sum(), rel=1e-6, abs=1e-6)
    assert sum(hv.bucket) == 1000
    (few,) = load(tmp_path / "px").Histograms("few")
    assert len(few.histogram_value.bucket) <= 6 or bins == "tensorflow"
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    with torch_tb.SummaryWriter(str(tmp_path / "torch")) as tw:
        tw.add_histogram("w", values, 3, bins=bins)
        tw.add_histogram("few", values, 4, bins=bins, max_bins=4)
    for tag in ("w", "few"):
        (theirs,) = load(tmp_path / "torch").Histograms(tag)
        (ours,) = load(tmp_path / "px").Histograms(tag)
        t, o = theirs.histogram_value, ours.histogram_value
        np.testing.assert_allclose(o.bucket_limit, t.bucket_limit, rtol=1e-6)
        assert list(o.bucket) == list(t.bucket)
        assert (o.min, o.max, o.num) == (t.min, t.max, t.num)


def test_bad_values_are_named(tmp_path):
    with SummaryWriter(str(tmp_path)) as w:
        with pytest.raises(ValueError, match=r"add_scalar\('x'\): the value must hold one number"):
            w.add_scalar("x", np.ones(3))
        with pytest.raises(TypeError, match=r"add_scalar\('x'\): the value must be numbers"):
            w.add_scalar("x", "high")
        with pytest.raises(ValueError, match=r"add_histogram\('h'\): the values are empty"):
            w.add_histogram("h", np.zeros(0))
        with pytest.raises(ValueError, match="NaN or infinity"):
            w.add_histogram("h", np.array([1.0, np.nan]))
        with pytest.raises(TypeError, match="text_string must be a str, got int"):
            w.add_text("t", 3)


def test_reopened_after_close_and_purge_step(tmp_path):
    w = SummaryWriter(str(tmp_path), purge_step=5)
    w.add_scalar("a", 1.0, 5)
    w.close()
    w.add_scalar("a", 2.0, 6)  # a closed writer opens a new file, as torch's does
    w.close()
    assert len(glob.glob(str(tmp_path / "events.out.tfevents.*"))) >= 1
    assert [e.value for e in load(tmp_path).Scalars("a")] == [1.0, 2.0]


def test_default_log_dir_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with SummaryWriter(comment="_lr0.1") as w:
        w.add_scalar("a", 1.0)
        assert w.get_logdir().startswith("runs" + os.sep) and w.get_logdir().endswith("_lr0.1")
    assert glob.glob(str(tmp_path / "runs" / "*_lr0.1" / "events.out.tfevents.*"))


def test_without_tensorboard_the_import_error_names_it():
    code = (
        "import sys; sys.modules['tensorboard'] = None\n"
        "try:\n"
        "    import phalanx.utils.tensorboard\n"
        "except ImportError as e:\n"
        "    print('IMPORTERROR', e)\n"
    )
    r = run_python(["-c", code])
    assert "IMPORTERROR phalanx.utils.tensorboard needs the tensorboard package" in r.stdout, r
