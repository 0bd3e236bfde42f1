"""The driver names the file of code sent by value in a rank's traceback: cloudpickle 3
sends code with co_filename "<dynamic-code>" (phalanx.distributed._driver.code_origins)."""

from __future__ import annotations

import traceback

from phalanx.distributed._driver.code_origins import code_origins, restore_files


def helper_far_away(x):
    raise ValueError(f"bad {x}")


class Model:
    def step(self, x):
        return helper_far_away(x)


def train(x):
    def inner(y):
        return Model().step(y)

    return inner(x)


def dynamic_traceback() -> str:
    """A real traceback of train(), then its file names erased as cloudpickle 3 erases them."""
    try:
        train(3)
    except ValueError:
        tb = traceback.format_exc()
    return tb.replace(f'"{__file__}"', '"<dynamic-code>"')


def test_every_frame_of_the_sent_code_gets_its_file_back():
    tb = dynamic_traceback()
    assert tb.count('"<dynamic-code>"') == 5, tb  # dynamic_traceback, train, inner, step, helper
    fixed = restore_files(tb, code_origins(train))
    for fn in ("train", "inner", "step", "helper_far_away"):  # reached from train
        assert f'File "{__file__}", line' in fixed and f"in {fn}\n" in fixed
        line = next(ln for ln in fixed.splitlines() if ln.endswith(f"in {fn}"))
        assert __file__ in line, (fn, fixed)
    # dynamic_traceback itself was not sent: its frame stays as the rank reported it
    line = next(ln for ln in fixed.splitlines() if ln.endswith("in dynamic_traceback"))
    assert "<dynamic-code>" in line


def test_a_name_and_line_that_match_no_sent_code_are_left_alone():
    tb = 'Traceback (most recent call last):\n  File "<dynamic-code>", line 99999, in train\nE: x\n'
    assert restore_files(tb, code_origins(train)) == tb
    tb2 = '  File "<dynamic-code>", line 1, in somebody_else\n'
    assert restore_files(tb2, code_origins(train)) == tb2
