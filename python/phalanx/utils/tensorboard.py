"""phalanx.utils.tensorboard.SummaryWriter: PyTorch's SummaryWriter (add_scalar, add_scalars,
add_histogram, add_text, flush, close, use as a context manager) for phalanx tensors, numpy
arrays and numbers, writing real TensorBoard event files through the `tensorboard` package.

    from phalanx.utils.tensorboard import SummaryWriter

    with SummaryWriter("runs/fmnist") as w:
        w.add_scalar("loss/train", loss, step)
        w.add_histogram("fc1.weight", model.fc1.weight, step)
    # tensorboard --logdir runs

The records are made as torch.utils.tensorboard makes them (the same histogram buckets, the
same add_scalars sub-directories), so TensorBoard shows a phalanx run and a PyTorch run of the
same script alike. `tensorboard` is optional for phalanx: without it, importing this module
raises ImportError naming it; phalanx.utils.metrics.MetricsLogger needs nothing.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime

import numpy as np

try:
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog
    from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
except ImportError as e:
    raise ImportError(
        "phalanx.utils.tensorboard needs the tensorboard package, which is not installed "
        f"(pip install tensorboard); phalanx.utils.metrics.MetricsLogger needs nothing: {e}"
    ) from e

__all__ = ["SummaryWriter"]


def _tensorflow_bins() -> list[float]:
    """TensorBoard's default histogram bucket edges (as torch's SummaryWriter.default_bins):
    +-1e-12 growing by 10% up to 1e20, and 0."""
    v, pos = 1e-12, []
    while v < 1e20:
        pos.append(v)
        v *= 1.1
    return [-x for x in reversed(pos)] + [0.0] + pos


_DEFAULT_BINS = _tensorflow_bins()


def _array(value, what: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a phalanx (or torch) tensor
        value = value.detach()
        if hasattr(value, "float") and str(getattr(value, "dtype", "")).endswith("bfloat16"):
            value = value.float()
        value = value.numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be numbers, got {type(value).__name__}") from None
    return arr


def _scalar(value, tag: str) -> float:
    arr = _array(value, f"add_scalar({tag!r}): the value")
    if arr.size != 1:
        raise ValueError(
            f"add_scalar({tag!r}): the value must hold one number, got shape {arr.shape}"
        )
    return float(arr.reshape(()))


def _histogram(values, bins, max_bins, tag: str) -> HistogramProto:
    """As torch.utils.tensorboard.summary.make_histogram: numpy's histogram trimmed to the
    buckets that hold values, one empty bucket kept on the left for the leftmost edge."""
    values = _array(values, f"add_histogram({tag!r}): the values").reshape(-1)
    if values.size == 0:
        raise ValueError(f"add_histogram({tag!r}): the values are empty")
    if not np.isfinite(values).all():
        raise ValueError(f"add_histogram({tag!r}): the values hold NaN or infinity")
    counts, limits = np.histogram(values, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        group = len(counts) // max_bins
        if len(counts) % group:
            counts = np.pad(counts, [[0, group - len(counts) % group]])
        counts = counts.reshape(-1, group).sum(axis=-1)
        new_limits = np.empty(counts.size + 1, limits.dtype)
        new_limits[:-1] = limits[:-1:group]
        new_limits[-1] = limits[-1]
        limits = new_limits
    cum = np.cumsum(np.greater(counts, 0))
    start, end = np.searchsorted(cum, [0, cum[-1] - 1], side="right")
    start, end = int(start), int(end) + 1
    counts = counts[start - 1 : end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start : end + 1]
    return HistogramProto(
        min=values.min(),
        max=values.max(),
        num=len(values),
        sum=values.sum(),
        sum_squares=values.dot(values),
        bucket_limit=limits.tolist(),
        bucket=counts.tolist(),
    )


class SummaryWriter:
    """Writes TensorBoard event files to `log_dir` (default runs/<date>_<host><comment>)."""

    def __init__(
        self,
        log_dir: str | None = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
    ):
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = os.fspath(log_dir)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self._writers: dict[str, EventFileWriter] = {}
        self._main()

    def _writer(self, log_dir: str) -> EventFileWriter:
        w = self._writers.get(log_dir)
        if w is None:
            w = EventFileWriter(log_dir, self.max_queue, self.flush_secs, self.filename_suffix)
            self._writers[log_dir] = w
        return w

    def _main(self) -> EventFileWriter:
        # (re)created on first use after close(), as torch's writer does
        fresh = self.log_dir not in self._writers
        w = self._writer(self.log_dir)
        if fresh and self.purge_step is not None:
            # TensorBoard drops the events at and after purge_step of an earlier, crashed run
            w.add_event(Event(step=self.purge_step, file_version="brain.Event:2"))
            w.add_event(
                Event(step=self.purge_step, session_log=SessionLog(status=SessionLog.START))
            )
            self.purge_step = None
        return w

    @staticmethod
    def _add(w: EventFileWriter, summary: Summary, step, walltime) -> None:
        event = Event(summary=summary, wall_time=time.time() if walltime is None else walltime)
        if step is not None:
            event.step = int(step)
        w.add_event(event)

    def get_logdir(self) -> str:
        return self.log_dir

    def add_scalar(self, tag: str, scalar_value, global_step=None, walltime=None) -> None:
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=_scalar(scalar_value, tag))])
        self._add(self._main(), summary, global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step=None, walltime=None):
        """One curve per key on one chart: each key goes to its own sub-directory
        log_dir/<main_tag>_<key>, with the tag main_tag (as PyTorch does)."""
        walltime = time.time() if walltime is None else walltime
        self._main()
        for tag, value in tag_scalar_dict.items():
            sub = os.path.join(self.log_dir, f"{main_tag.replace('/', '_')}_{tag}")
            summary = Summary(value=[Summary.Value(tag=main_tag, simple_value=_scalar(value, tag))])
            self._add(self._writer(sub), summary, global_step, walltime)

    def add_histogram(
        self, tag: str, values, global_step=None, bins="tensorflow", walltime=None, max_bins=None
    ) -> None:
        """`bins`: 'tensorflow' (TensorBoard's default buckets), a number of buckets, edges, or
        any numpy.histogram bins name ('auto', 'fd', ...)."""
        if isinstance(bins, str) and bins == "tensorflow":
            bins = _DEFAULT_BINS
        summary = Summary(
            value=[Summary.Value(tag=tag, histo=_histogram(values, bins, max_bins, tag))]
        )
        self._add(self._main(), summary, global_step, walltime)

    def add_text(self, tag: str, text_string: str, global_step=None, walltime=None) -> None:
        if not isinstance(text_string, str):
            raise TypeError(
                f"add_text({tag!r}): text_string must be a str, got {type(text_string).__name__}"
            )
        plugin = SummaryMetadata.PluginData(
            plugin_name="text", content=TextPluginData(version=0).SerializeToString()
        )
        tensor = TensorProto(
            dtype="DT_STRING",
            string_val=[text_string.encode("utf-8")],
            tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
        )
        value = Summary.Value(
            tag=tag + "/text_summary", metadata=SummaryMetadata(plugin_data=plugin), tensor=tensor
        )
        self._add(self._main(), Summary(value=[value]), global_step, walltime)

    def flush(self) -> None:
        for w in self._writers.values():
            w.flush()

    def close(self) -> None:
        for w in self._writers.values():
            w.flush()
            w.close()
        self._writers = {}

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
