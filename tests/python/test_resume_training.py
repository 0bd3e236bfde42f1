"""A training run stopped mid-epoch and resumed from a Checkpoint continues bit for bit as
one that never stopped, with the real pieces together: nn.Module (batch norm, dropout),
optim.SGD with momentum, a cosine scheduler, and a shuffling DataLoader with augmentation."""

import numpy as np

import phalanx
import phalanx.nn as nn
import phalanx.nn.functional as F
from phalanx.utils.checkpoint import Checkpoint
from phalanx.utils.data import DataLoader, TensorDataset

TOTAL_STEPS = 15  # two and a half epochs


def _make_run(seed: int = 0):
    phalanx.manual_seed(seed)
    rng = np.random.default_rng(1234)  # the data are the same in every run
    x = phalanx.from_numpy(rng.standard_normal((48, 1, 6, 6)).astype(np.float32))
    y = phalanx.from_numpy(rng.integers(0, 3, 48).astype(np.int64))
    loader = DataLoader(
        TensorDataset(x, y), batch_size=8, shuffle=True, generator=phalanx.Generator(seed)
    )
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(4 * 36, 3),
    )
    opt = phalanx.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    sched = phalanx.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=TOTAL_STEPS)
    return model, opt, sched, loader


def _train(model, opt, sched, loader, steps: int, start: int = 0) -> int:
    """Runs `steps` optimizer steps from global step `start`, epoch by epoch."""
    step = start
    while step < start + steps:
        # a resumed loader starts where the stopped one was, mid-epoch
        for xb, yb in loader:
            model.train()
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step == start + steps:
                return step
    return step


def _state(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_stopped_and_resumed_run_is_bit_identical(tmp_path):
    model, opt, sched, loader = _make_run()
    _train(model, opt, sched, loader, TOTAL_STEPS)
    straight = _state(model)

    model, opt, sched, loader = _make_run()
    stop = 9  # in the middle of the second epoch (6 batches per epoch)
    _train(model, opt, sched, loader, stop)
    ckpt = Checkpoint(
        tmp_path / "run.phx", model=model, optimizer=opt, scheduler=sched, loader=loader
    )
    ckpt.save(step=stop)
    # Destroy the run and advance every random stream, as a new process would start afresh.
    del model, opt, sched, loader
    phalanx.randn(100)
    np.random.random(10)

    model, opt, sched, loader = _make_run(seed=1)  # different init and order: load must override
    path = tmp_path / "run.phx"
    meta = Checkpoint(path, model=model, optimizer=opt, scheduler=sched, loader=loader).load()
    assert meta["step"] == stop
    _train(model, opt, sched, loader, TOTAL_STEPS - stop, start=stop)
    resumed = _state(model)

    assert straight.keys() == resumed.keys()
    for k in straight:
        assert np.array_equal(straight[k], resumed[k]), f"{k} differs after resume"
