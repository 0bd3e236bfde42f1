"""Which oneDNN implementation each primitive kind dispatches to during one training step of
every zoo model (issue 11, section 4): on the phone's CPU (run under qemu-aarch64 -cpu
cortex-a76 by `make dispatch-aarch64`) a `ref` implementation in a training step's hot path
is one or two orders of magnitude slower than a JIT or GEMM-based one.

Runs each model's step in a child process with ONEDNN_VERBOSE=1 (oneDNN reads it when the
library loads) and parses the `exec` lines: primitive kind -> implementation names.
Prints a markdown table; with --json PATH also writes {model: {kind: [impl, ...]}}; with
--fail-on-ref exits 1 when a hot-path kind (everything but reorder) used a `ref` implementation.

Usage: python benchmarks/dispatch_table.py [--models lenet5,resnet18,...] [--batch N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict

# Small inputs: the dispatch depends on shapes only through layouts and sizes that these keep
# (3x3 convs, depthwise, 1x1, strided, pooling), and qemu is slow.
MODELS = {
    "lenet5": "phalanx.models.LeNet5(num_classes=10)",
    "resnet18": "phalanx.models.resnet18(num_classes=10, stem='cifar')",
    "mobilenet_v1": "phalanx.models.mobilenet_v1(num_classes=10, width_mult=0.25)",
    "resnet50": "phalanx.models.resnet50(num_classes=10, stem='cifar')",
    "tiny_yolov2": "phalanx.models.tiny_yolov2_backbone()",
}
INPUTS = {
    "lenet5": (1, 28),
    "resnet18": (3, 32),
    "mobilenet_v1": (3, 64),
    "resnet50": (3, 32),
    "tiny_yolov2": (3, 64),
}
KINDS = (
    "convolution",
    "deconvolution",
    "batch_normalization",
    "layer_normalization",
    "pooling",
    "inner_product",
    "matmul",
    "eltwise",
    "binary",
    "softmax",
    "reduction",
    "resampling",
    "sum",
    "reorder",
)

STEP = """
import phalanx, phalanx.models, phalanx.nn.functional as F
model = {ctor}
opt = phalanx.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x = phalanx.randn({batch}, {channels}, {size}, {size})
out = model(x)
out = out.flatten(1) if out.dim() > 2 else out
loss = F.cross_entropy(out, phalanx.zeros(out.shape[0], dtype=phalanx.int64))
loss.backward()
opt.step()
print("STEP-DONE", float(loss))
"""


def parse(verbose: str) -> dict[str, set[str]]:
    """onednn_verbose,<v3: time stamp fields>,exec,cpu,<kind>,<impl>,<prop>,... -> kind: {impl}"""
    found: dict[str, set[str]] = defaultdict(set)
    for line in verbose.splitlines():
        if not line.startswith("onednn_verbose") or ",exec," not in line:
            continue
        fields = line.split(",")
        i = fields.index("exec")
        if i + 3 >= len(fields):
            continue
        kind, impl = fields[i + 2], fields[i + 3]
        found[kind].add(impl)
    return found


def run(model: str, batch: int) -> dict[str, set[str]]:
    channels, size = INPUTS[model]
    code = STEP.format(ctor=MODELS[model], batch=batch, channels=channels, size=size)
    env = dict(os.environ, ONEDNN_VERBOSE="1", DNNL_VERBOSE="1")
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=3600
    )
    if r.returncode != 0 or "STEP-DONE" not in r.stdout:
        raise RuntimeError(f"{model}: the training step failed:\n{r.stderr[-3000:]}")
    return parse(r.stdout)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--fail-on-ref", action="store_true")
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r}; choose from {', '.join(MODELS)}")
    table = {m: run(m, args.batch) for m in models}
    kinds = [k for k in KINDS if any(k in t for t in table.values())]
    kinds += sorted({k for t in table.values() for k in t} - set(kinds))
    print("| primitive | " + " | ".join(models) + " |")
    print("|---" * (len(models) + 1) + "|")
    for k in kinds:
        cells = [", ".join(sorted(table[m].get(k, ()))) or "–" for m in models]
        print(f"| {k} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {m: {k: sorted(v) for k, v in t.items()} for m, t in table.items()}, f, indent=1
            )
    refs = sorted(
        {
            (m, k, i)
            for m, t in table.items()
            for k, v in t.items()
            if k != "reorder"
            for i in v
            if "ref" in i
        }
    )
    for m, k, i in refs:
        print(f"ref in the hot path: {m}: {k} -> {i}", file=sys.stderr)
    return 1 if args.fail_on_ref and refs else 0


if __name__ == "__main__":
    sys.exit(main())
