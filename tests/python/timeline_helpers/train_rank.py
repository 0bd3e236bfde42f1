"""A rank of a small DDP run with a DataLoader, for the timeline tests: STEPS steps of a
two-bucket model (bucket_cap_mb tiny), then destroy_process_group, which writes the trace.
With --api it starts and stops the timeline itself instead of PHALANX_TIMELINE."""

import argparse

import numpy as np

import phalanx
import phalanx.distributed as dist
import phalanx.nn as nn
import phalanx.nn.functional as F
from phalanx.nn.parallel import DistributedDataParallel
from phalanx.utils import timeline
from phalanx.utils.data import DataLoader, TensorDataset

p = argparse.ArgumentParser()
p.add_argument("steps", type=int)
p.add_argument("--api", default=None, metavar="PATH")
args = p.parse_args()

dist.init_process_group("gloo")
if args.api:
    timeline.start(args.api)
phalanx.manual_seed(0)
model = DistributedDataParallel(
    nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)),
    bucket_cap_mb=0.05,
    first_bucket_cap_mb=0.01,
)
opt = phalanx.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
rng = np.random.default_rng(dist.get_rank())
data = TensorDataset(
    phalanx.tensor(rng.standard_normal((16 * args.steps, 64)).astype(np.float32)),
    phalanx.tensor(rng.integers(0, 10, 16 * args.steps)),
)
for x, y in DataLoader(data, batch_size=16):
    with timeline.span("step", cat="user"):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
if args.api:
    print("WROTE", timeline.stop(), flush=True)
dist.destroy_process_group()
