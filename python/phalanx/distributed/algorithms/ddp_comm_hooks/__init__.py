"""Communication hooks for DistributedDataParallel (``ddp.register_comm_hook(state, hook)``).

A hook is ``hook(state, bucket) -> phalanx.futures.Future`` whose value is a tensor with
``bucket.buffer()``'s number of elements holding the **sum** over ranks of every rank's
``bucket.buffer()``. DDP has already scaled each rank's buffer by that rank's weight (1/world
size, or its share of the global batch), so unlike PyTorch's hooks a phalanx hook never
divides by the world size.
"""

from .default_hooks import allreduce_hook, bf16_compress_hook, fp16_compress_hook

__all__ = ["allreduce_hook", "bf16_compress_hook", "fp16_compress_hook"]
