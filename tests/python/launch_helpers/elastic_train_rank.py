"""A rank of a small, deterministic elastic DDP training run, with failures on cue.

    elastic_train_rank.py OUT_DIR --steps N [--commit-every K] [--event HOW:MEMBER:STEP ...]
                          [--step-sleep S] [--reference STATE_FILE] [--global-batch keep|shrink]
                          [--join-delay S]

HOW is kill (SIGKILL itself: vanishes, sockets closed), stop (SIGSTOP itself: frozen with
its connections open, like an unplugged phone) or awaitjoin (wait until a process the
launcher started to join is about to ask to, however slowly it starts: emulation), done by
member MEMBER just before step STEP. A joining process writes OUT_DIR/joining_m<M> just
before its init_process_group, after sleeping --join-delay seconds (a slow phone's start).
Every rank writes OUT_DIR/restored_g<G>_m<M>.pkl when train() restarts in a new generation
(the state it continues from) and OUT_DIR/final_m<M>.pkl at the end (parameters, step,
generation, world size). With --reference the run is not elastic: it loads STATE_FILE (a
restored_*.pkl) and trains from there, the run "started from the committed state with the
survivors only" that the elastic run must equal exactly.
"""

import argparse
import os
import pickle
import signal
import sys
import time

import numpy as np

import phalanx
import phalanx.distributed as dist
import phalanx.nn as nn
from phalanx.distributed import elastic
from phalanx.distributed.elastic._state import _from_numpy, _to_numpy
from phalanx.nn.parallel import DistributedDataParallel
from phalanx.utils.data import BalancedDistributedSampler

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--steps", type=int, required=True)
p.add_argument("--commit-every", type=int, default=2)
p.add_argument("--event", action="append", default=[])
p.add_argument("--step-sleep", type=float, default=0.0)
p.add_argument("--reference", default=None)
p.add_argument("--global-batch", default="keep")
p.add_argument("--join-delay", type=float, default=0.0)
args = p.parse_args()
JOINING = os.environ.get("PHALANX_ELASTIC_JOIN") == "1"
TIME_SCALE = float(os.environ.get("PHALANX_TEST_TIME_SCALE", "1"))

SAMPLES, GLOBAL_BATCH = 480, 12
rng = np.random.RandomState(0)
X = rng.randn(SAMPLES, 4).astype(np.float32)
Y = rng.randn(SAMPLES, 3).astype(np.float32)

if JOINING:
    time.sleep(args.join_delay)
    with open(os.path.join(args.out, f"joining_m{os.environ['PHALANX_ELASTIC_MEMBER']}"), "w"):
        pass
dist.init_process_group("gloo")
phalanx.manual_seed(0)
model = DistributedDataParallel(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)))
opt = phalanx.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
sampler = BalancedDistributedSampler(list(range(SAMPLES)), GLOBAL_BATCH, shuffle=False)
events = {}
for e in args.event:
    how, member, step = e.split(":")
    events[(int(member), int(step))] = how


def dump(path, state_or_none, step, generation, member):
    params = [p.detach().numpy().copy() for p in model.parameters()]
    blob = {
        "params": params,
        "optimizer": _to_numpy(opt.state_dict()),
        "sampler": sampler.state_dict(),
        "step": step,
        "generation": generation,
        "world": dist.get_world_size(),
        "member": member,
        "lr": opt.param_groups[0]["lr"],
    }
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(blob, f)
    os.replace(tmp, path)


def one_step(indices):
    x = phalanx.tensor(X[indices])
    y = phalanx.tensor(Y[indices])
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
    return loss.item()


def await_joiner(timeout=60 * TIME_SCALE):
    deadline = time.monotonic() + timeout
    while not any(n.startswith("joining_m") for n in os.listdir(args.out)):
        if time.monotonic() > deadline:
            sys.exit(f"no joining process started within {timeout:g} s")
        time.sleep(0.05)


def batches():
    while True:
        yield from sampler
        sampler.set_epoch(sampler.epoch + 1)


if args.reference:  # the non-elastic run from the committed state
    with open(args.reference, "rb") as f:
        start = pickle.load(f)
    with phalanx.no_grad():
        for p_, saved in zip(model.parameters(), start["params"]):
            p_.copy_(phalanx.tensor(saved))
    opt.load_state_dict(_from_numpy(start["optimizer"]))
    opt.param_groups[0]["lr"] = start["lr"]
    batch = start["sampler"]["global_batch_size"]  # smaller after a shrink
    sampler = BalancedDistributedSampler(list(range(SAMPLES)), batch, shuffle=False)
    sampler.load_state_dict(start["sampler"])
    step = start["step"]
    it = batches()
    while step < args.steps:
        one_step(next(it))
        step += 1
    dump(os.path.join(args.out, f"reference_r{dist.get_rank()}.pkl"), None, step, -1, -1)
    dist.destroy_process_group()
    sys.exit(0)

state = elastic.State(model=model, optimizer=opt, sampler=sampler, step=0)


@elastic.run(global_batch=args.global_batch)
def train(state):
    if state.generation > 0:
        name = f"restored_g{state.generation}_m{state.member}.pkl"
        dump(os.path.join(args.out, name), state, state.step, state.generation, state.member)
    it = batches()
    while state.step < args.steps:
        how = events.pop((state.member, state.step), None)
        if how is not None:
            print(
                f"member {state.member}: {how} at step {state.step} t {time.time():.3f}", flush=True
            )
            if how == "awaitjoin":
                await_joiner()
            else:
                os.kill(os.getpid(), signal.SIGKILL if how == "kill" else signal.SIGSTOP)
        loss = one_step(next(it))
        state.step += 1
        print(
            f"member {state.member} rank {dist.get_rank()}/{dist.get_world_size()} "
            f"gen {state.generation} step {state.step} loss {loss:.6f} t {time.time():.3f}",
            flush=True,
        )
        if args.step_sleep:
            time.sleep(args.step_sleep)
        if state.step % args.commit_every == 0:
            state.commit()


train(state)
dump(
    os.path.join(args.out, f"final_m{state.member}.pkl"),
    state,
    state.step,
    state.generation,
    state.member,
)
dist.destroy_process_group()
print(f"member {state.member} done", flush=True)
