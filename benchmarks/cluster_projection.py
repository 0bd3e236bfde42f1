"""Projects the 138-phone cluster of arXiv 2110.12172 with phalanx.perfmodel (docs/scale.md).

    python benchmarks/cluster_projection.py                     # the tables of docs/scale.md
    python benchmarks/cluster_projection.py --phone-gflops 20 --alpha-us 300

Inputs (all options; the defaults and their sources are in docs/scale.md, "Inputs"):
- per-phone compute: effective training GFLOP/s of one Galaxy S10+ (--phone-gflops), and a
  lower efficiency for MobileNet-v1's depthwise convolutions (--depthwise-efficiency);
- the models' training FLOPs per image and gradient bytes (ResNet-50, MobileNet-v1 at 224);
- links: wired Ethernet per phone (1 Gbit/s and 100 Mbit/s; alpha and payload efficiency as
  fitted on the emulated cluster), Wi-Fi as one shared 5 GHz channel;
- per-phone batch (--batch), DDP's buckets (1 MB first, then 25 MB).
"""

from __future__ import annotations

import argparse
import sys

from phalanx import perfmodel as pm

# Model facts (torchvision's definitions, 224x224): multiply-accumulates of one forward
# pass and parameters. Training ~ 3 forward passes, 2 FLOPs per MAC.
MODELS = {
    "ResNet-50": {"gmac": 4.11, "params": 25.56e6, "depthwise": False},
    "MobileNet-v1": {"gmac": 0.569, "params": 4.23e6, "depthwise": True},
}
# Reference GPUs (fp32 training images/s) used only to restate the paper's ratios.
P100_RESNET50 = 220.0


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--phone-gflops", type=float, default=35.0)
    ap.add_argument("--depthwise-efficiency", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=32, help="images per phone per step")
    ap.add_argument("--alpha-us", type=float, default=200.0, help="wired link latency")
    ap.add_argument("--efficiency", type=float, default=0.94, help="wired TCP payload share")
    ap.add_argument("--wifi-rate", default="867mbit", help="the shared channel's PHY rate")
    ap.add_argument("--wifi-efficiency", type=float, default=0.5)
    ap.add_argument("--wifi-alpha-ms", type=float, default=3.0)
    args = ap.parse_args(argv)
    for name in ("phone_gflops", "batch", "alpha_us", "efficiency", "depthwise_efficiency"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    return args


def profile(name: str, args) -> pm.ModelProfile:
    m = MODELS[name]
    gflops = args.phone_gflops * (args.depthwise_efficiency if m["depthwise"] else 1.0)
    per_image = 2 * m["gmac"] / gflops  # one forward, seconds
    param_bytes = 4 * m["params"]
    return pm.ModelProfile.uniform(
        name,
        param_bytes=param_bytes,
        forward_s=per_image * args.batch,
        backward_s=2 * per_image * args.batch,
        # SGD with momentum reads and writes ~4 copies of the parameters; ~10 GB/s of phone
        # memory bandwidth.
        optimizer_s=4 * param_bytes / 10e9,
        batch=args.batch,
    )


def wired(rate: str, args) -> pm.Link:
    return pm.Link.from_rate(rate, alpha_s=args.alpha_us * 1e-6, efficiency=args.efficiency)


def wifi(world: int, args) -> pm.Link:
    return pm.Link.shared_medium(
        args.wifi_rate, world, alpha_s=args.wifi_alpha_ms * 1e-3, efficiency=args.wifi_efficiency
    )


def scaling_table(args) -> str:
    counts = [1, 8, 16, 30, 64, 138, 276]
    lines = [
        "| model | network | " + " | ".join(f"{n} phones" for n in counts) + " |",
        "|---|---|" + "---:|" * len(counts),
    ]
    for name in MODELS:
        prof = profile(name, args)
        for label, link_of in (
            ("Ethernet 1 Gbit/s", lambda n: wired("1gbit", args)),
            ("Ethernet 100 Mbit/s", lambda n: wired("100mbit", args)),
            ("Wi-Fi (shared)", lambda n: wifi(n, args)),
        ):
            cells = []
            for n in counts:
                est = pm.step_time(prof, n, link_of(n))
                cells.append(f"{est.images_per_s:.0f} ({est.scaling_efficiency:.0%})")
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def variants_table(args, world=138, groups=6) -> str:
    k = world // groups
    lines = [
        f"| model | {world} phones, 1 Gbit/s each | step s | images/s | efficiency "
        "| communication exposed s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    link = wired("1gbit", args)
    slow_up = wired("1gbit", args)
    for name in MODELS:
        prof = profile(name, args)
        rows = [
            ("one switch, auto (bcube)", {}),
            ("one switch, fp16 compression", {"compression": 0.5}),
            (
                f"{groups} switches x {k}, 1 Gbit/s uplinks, flat, ranks listed by switch",
                {"group_size": k, "uplink": slow_up},
            ),
            (
                f"{groups} switches x {k}, 1 Gbit/s uplinks, flat, ranks mixed across switches",
                {"group_size": k, "uplink": slow_up, "ranks_by_switch": False},
            ),
            (
                f"{groups} switches x {k}, 1 Gbit/s uplinks, hierarchical",
                {"algorithm": "hierarchical", "group_size": k, "uplink": slow_up},
            ),
            (
                f"{groups} switches x {k}, 1 Gbit/s uplinks, hierarchical + fp16",
                {
                    "algorithm": "hierarchical",
                    "group_size": k,
                    "uplink": slow_up,
                    "compression": 0.5,
                },
            ),
            (
                f"{groups} switches x {k}, 100 Mbit/s uplinks, flat, ranks listed by switch",
                {"group_size": k, "uplink": wired("100mbit", args)},
            ),
            (
                f"{groups} switches x {k}, 100 Mbit/s uplinks, hierarchical",
                {
                    "algorithm": "hierarchical",
                    "group_size": k,
                    "uplink": wired("100mbit", args),
                },
            ),
            ("one rank 30% slower (straggler)", {"straggler": 1.3}),
        ]
        for label, kw in rows:
            est = pm.step_time(prof, world, link, **kw)
            lines.append(
                f"| {name} | {label} | {est.step_s:.2f} | {est.images_per_s:.0f} | "
                f"{est.scaling_efficiency:.0%} | {est.comm_exposed_s:.2f} |"
            )
    return "\n".join(lines)


def wifi_table(args, world=30) -> str:
    lines = [
        f"| model | {world} phones on one Wi-Fi channel | step s | images/s | efficiency |",
        "|---|---|---:|---:|---:|",
    ]
    for name in MODELS:
        prof = profile(name, args)
        big = profile(name, argparse.Namespace(**{**vars(args), "batch": 4 * args.batch}))
        for label, p, kw in (
            (f"batch {args.batch}/phone", prof, {}),
            (f"batch {args.batch}/phone, fp16 compression", prof, {"compression": 0.5}),
            (f"batch {4 * args.batch}/phone, fp16 compression", big, {"compression": 0.5}),
        ):
            est = pm.step_time(p, world, wifi(world, args), **kw)
            lines.append(
                f"| {name} | {label} | {est.step_s:.1f} | {est.images_per_s:.0f} | "
                f"{est.scaling_efficiency:.0%} |"
            )
    return "\n".join(lines)


def saturation(args) -> str:
    """Where adding phones stops paying: the first N at which efficiency falls below 50%."""
    lines = [
        "| model | network | efficiency < 50% from | most images/s (at N) |",
        "|---|---|---:|---:|",
    ]
    for name in MODELS:
        prof = profile(name, args)
        for label, link_of in (
            ("Ethernet 1 Gbit/s", lambda n: wired("1gbit", args)),
            ("Ethernet 100 Mbit/s", lambda n: wired("100mbit", args)),
            ("Wi-Fi (shared)", lambda n: wifi(n, args)),
        ):
            half, best = None, (0.0, 1)
            for n in range(2, 1025):
                est = pm.step_time(prof, n, link_of(n))
                if half is None and est.scaling_efficiency < 0.5:
                    half = n
                if est.images_per_s > best[0]:
                    best = (est.images_per_s, n)
            lines.append(
                f"| {name} | {label} | {half or '> 1024'} | {best[0]:.0f} (N = {best[1]}) |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    print(
        f"Inputs: {args.phone_gflops:g} GFLOP/s per phone (depthwise x"
        f"{args.depthwise_efficiency:g}), batch {args.batch}/phone, wired alpha "
        f"{args.alpha_us:g} us at {args.efficiency:.0%} payload, Wi-Fi {args.wifi_rate} shared "
        f"at {args.wifi_efficiency:.0%}, alpha {args.wifi_alpha_ms:g} ms\n"
    )
    for name in MODELS:
        prof = profile(name, args)
        print(
            f"{name}: compute {prof.compute_s:.2f} s per step of {args.batch} images, "
            f"gradients {prof.param_bytes / 1e6:.1f} MB"
        )
    print("\n#### Images/s (scaling efficiency) by cluster size\n")
    print(scaling_table(args))
    print("\n#### Where scaling saturates\n")
    print(saturation(args))
    print("\n#### 30 phones on Wi-Fi\n")
    print(wifi_table(args))
    print("\n#### 138 phones: compression, switches, stragglers\n")
    print(variants_table(args))
    r50 = pm.step_time(profile("ResNet-50", args), 138, wired("1gbit", args))
    print(
        f"\nResNet-50 on 138 phones at 1 Gbit/s: {r50.images_per_s:.0f} images/s = "
        f"{r50.images_per_s / P100_RESNET50:.0%} of a P100 at {P100_RESNET50:.0f} images/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
