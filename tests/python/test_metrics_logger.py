"""phalanx.utils.metrics: MetricsLogger writes JSON lines or CSV (growing the CSV header when
a new metric appears), read_metrics reads both back; bad input is named."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

import phalanx
from phalanx.utils.metrics import MetricsLogger, read_metrics


def test_jsonl_records(tmp_path):
    path = tmp_path / "sub" / "m.jsonl"
    with MetricsLogger(path) as log:
        log.log(step=1, loss=phalanx.tensor(0.5), acc=np.float32(0.25))
        log.log(loss=float("nan"), note="diverged")
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == [1, None]
    assert rows[0]["loss"] == 0.5 and rows[0]["acc"] == 0.25 and rows[0]["time"] > 0
    assert math.isnan(rows[1]["loss"]) and rows[1]["note"] == "diverged"
    # appending by default; a killed writer's partial last line is skipped
    with open(path, "a") as f:
        f.write('{"step": 3, "lo')
    MetricsLogger(path).log(step=4, loss=0.1)
    assert [r["step"] for r in read_metrics(path)] == [1, None, 4]
    MetricsLogger(path, append=False).log(loss=1.0)
    assert len(read_metrics(path)) == 1


def test_csv_grows_its_header(tmp_path):
    path = tmp_path / "m.csv"
    log = MetricsLogger(path)
    log.log(step=1, loss=0.5)
    log.log(step=2, loss=0.25, acc=0.75)  # a new column: the file is rewritten
    MetricsLogger(path).log(step=3, acc=0.8)  # a new logger keeps the header
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    assert header == ["step", "time", "loss", "acc"]
    rows = read_metrics(path)
    assert [(r["step"], r["loss"], r["acc"]) for r in rows] == [
        (1, 0.5, None),
        (2, 0.25, 0.75),
        (3, None, 0.8),
    ]


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda log: log.log(step=1), ValueError, "no metrics given"),
        (lambda log: log.log(loss=[1, 2]), TypeError, "metric 'loss' must be a number, got list"),
        (lambda log: log.log(step="one", loss=1), TypeError, "step must be an int or None"),
        (lambda log: log.log_dict({"time": 1}), ValueError, "bad metric name 'time'"),
    ],
)
def test_bad_records(tmp_path, call, error, message):
    with pytest.raises(error, match=message):
        call(MetricsLogger(tmp_path / "m.jsonl"))


def test_unknown_extension_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"cannot tell the format of .*'\.txt'"):
        MetricsLogger(tmp_path / "m.txt")
    with pytest.raises(ValueError, match="format must be 'jsonl' or 'csv', got 'xml'"):
        MetricsLogger(tmp_path / "m.txt", format="xml")
