"""The stock communication hooks: plain all-reduce, and all-reduce in 16-bit floats.

Compression halves the bytes on the wire (what limits a phone cluster on 100 Mbit/s
Ethernet) at the cost of rounding every rank's contribution and the partial sums to 16 bits;
tests/python/test_ddp.py measures that error against the float32 result.
"""

from __future__ import annotations

from .... import _C
from ....futures import Future
from ... import ReduceOp, all_reduce


def allreduce_hook(process_group, bucket) -> Future:
    """Sums the bucket across ranks in its own dtype (DDP's default)."""
    buffer = bucket.buffer()
    work = all_reduce(buffer, ReduceOp.SUM, group=process_group, async_op=True)
    return Future([work], value=buffer)


def _compress_hook(process_group, bucket, dtype) -> Future:
    buffer = bucket.buffer()
    compressed = buffer.to(dtype)
    work = all_reduce(compressed, ReduceOp.SUM, group=process_group, async_op=True)

    def decompress():
        buffer.copy_(compressed)  # back to the bucket's dtype, in place
        return buffer

    return Future([work], compute=decompress)


def fp16_compress_hook(process_group, bucket) -> Future:
    """Sends and sums the bucket as float16 (range +-65504, 11-bit mantissa)."""
    return _compress_hook(process_group, bucket, _C.dtype.float16)


def bf16_compress_hook(process_group, bucket) -> Future:
    """Sends and sums the bucket as bfloat16 (float32's range, 8-bit mantissa)."""
    return _compress_hook(process_group, bucket, _C.dtype.bfloat16)
