"""The timeline (PHALANX_TIMELINE, phalanx.utils.timeline): per-rank spans of forward,
backward, optimizer step, bucket all-reduces, data loading, plus CPU samples, merged across
ranks on rank 0's clock into one Chrome-trace / Perfetto JSON file.

recorder (the spans; imported by the instrumented code, imports nothing), samplers (CPU
frequency and temperature), clock (rank clock offsets through the store), export (gathering
and writing the trace), session (start/stop and the hooks that only exist while recording).
"""
