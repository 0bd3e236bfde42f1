"""Where the code sent by value came from, to name it in a rank's traceback.

cloudpickle 3 sends every code object with `co_filename` "<dynamic-code>" (a deterministic
payload), so a rank's traceback through the user's function reads `File "<dynamic-code>",
line 55, in train` and neither the rank nor the driver can show the line. Line numbers and
names survive, so the driver records, before sending, the file of each function it sends by
value (the function, what its closures and globals reach, class methods) and puts the file
back into the traceback it reports.
"""

from __future__ import annotations

import inspect
import re
import types

DYNAMIC = "<dynamic-code>"
_MAX_OBJECTS = 10_000  # a bound on the walk over what the function reaches

# (function name, first line, last line, file)
Origin = tuple[str, int, int, str]


def _line_range(code: types.CodeType) -> tuple[int, int]:
    lines = [line for _, _, line in code.co_lines() if line is not None]
    return code.co_firstlineno, max(lines, default=code.co_firstlineno)


def code_origins(fn) -> list[Origin]:
    """Every code object reachable from `fn` (nested functions, closures, globals it names,
    methods of classes among them) with its name, line range and file."""
    origins: list[Origin] = []
    seen: set[int] = set()
    stack = [fn]
    while stack and len(seen) < _MAX_OBJECTS:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (staticmethod, classmethod)):
            stack.append(obj.__func__)
        elif isinstance(obj, types.MethodType):
            stack.append(obj.__func__)
        elif isinstance(obj, types.FunctionType):
            stack.append(obj.__code__)
            stack.extend(c.cell_contents for c in obj.__closure__ or () if _filled(c))
            g = obj.__globals__
            stack.extend(g[name] for name in _names(obj.__code__) if name in g)
        elif isinstance(obj, types.CodeType):
            if obj.co_filename != DYNAMIC:
                first, last = _line_range(obj)
                origins.append((obj.co_name, first, last, obj.co_filename))
            stack.extend(c for c in obj.co_consts if isinstance(c, types.CodeType))
        elif inspect.isclass(obj) and not obj.__module__.startswith("builtins"):
            stack.extend(vars(obj).values())
    return origins


def _filled(cell) -> bool:
    try:
        return cell.cell_contents is not cell  # always True once it reads
    except ValueError:  # an empty cell (a name assigned later)
        return False


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _names(c)
    return names


_FRAME = re.compile(
    r'^(?P<head>  File ")<dynamic-code>(?P<tail>", line (?P<line>\d+), in (?P<fn>.*))$'
)


def restore_files(tb: str, origins: list[Origin]) -> str:
    """`tb` with each "<dynamic-code>" frame named by the file of the sent code whose name
    and line range match it (left as it is when none or several files match)."""
    out = []
    for line in tb.splitlines(keepends=True):
        m = _FRAME.match(line.rstrip("\n"))
        if m:
            n = int(m["line"])
            files = {
                f for name, first, last, f in origins if name == m["fn"] and first <= n <= last
            }
            if len(files) == 1:
                end = "\n" if line.endswith("\n") else ""
                line = f"{m['head']}{files.pop()}{m['tail']}{end}"
        out.append(line)
    return "".join(out)
