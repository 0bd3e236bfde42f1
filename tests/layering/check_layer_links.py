"""Link-level layering check: no layer library uses a symbol defined by a layer it may not see.

The header views (cmake/PhalanxLayers.cmake) stop upward includes; this stops the remaining way
up, a hand-written declaration of a higher layer's function. Usage:

    check_layer_links.py NAME=LIB[:DEP,DEP...] ...

Only strong definitions count as a layer's own: inline functions and template instantiations are
weak (W/V) and appear in every library that uses them, whichever layer wrote them.
"""

import subprocess
import sys

STRONG_DEFINED = set("TDBRGSu")


def symbols(lib):
    out = subprocess.run(
        ["nm", "--no-sort", lib], check=True, capture_output=True, text=True
    ).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in STRONG_DEFINED:
            defined.add(parts[2])
    return defined, undefined


def main(argv):
    layers = {}
    for arg in argv:
        name, _, rest = arg.partition("=")
        lib, _, deps = rest.partition(":")
        layers[name] = (lib, [d for d in deps.split(",") if d])
    defined = {}
    undefined = {}
    for name, (lib, _) in layers.items():
        defined[name], undefined[name] = symbols(lib)
    owner = {}
    for name, syms in defined.items():
        for s in syms:
            owner.setdefault(s, name)
    errors = []
    for name, (_, deps) in layers.items():
        allowed = {name, *deps}
        for s in sorted(undefined[name]):
            home = owner.get(s)
            if home is not None and home not in allowed:
                errors.append(f"layer {name} uses {s}, defined by layer {home} it may not see")
    if errors:
        print("\n".join(errors))
        return 1
    print(f"layering: {len(layers)} layer libraries, no symbol used from above or beside")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
