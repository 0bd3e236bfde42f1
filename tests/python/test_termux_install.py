"""termux/install.sh on a fake Termux: stand-ins for pkg, dpkg, python3, uname and phalanx
record what the script asks for. Checks that it installs what is missing, nothing the second
time, builds phalanx with the bundled-dependency cache, and names the package when one fails."""

from __future__ import annotations

import os
import subprocess
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "termux", "install.sh")

# Each fake package, once "installed", provides these files under $PREFIX.
PROVIDES = {
    "python": ["bin/python3"],
    "python-pip": ["bin/pip"],
    "python-numpy": ["lib/numpy-marker"],
    "cmake": ["bin/cmake"],
    "ninja": ["bin/ninja"],
    "clang": ["bin/clang++"],
    "libprotobuf": ["lib/libprotobuf.so"],
    "protobuf": ["bin/protoc"],
    "libopenblas": ["lib/libopenblas.so"],
    "pybind11": ["share/cmake/pybind11/pybind11Config.cmake"],
}


def fake_termux(tmp_path, broken: str = ""):
    prefix, log = tmp_path / "usr", tmp_path / "calls.log"
    bin_ = prefix / "bin"
    bin_.mkdir(parents=True)
    provides = " ".join(f"{k}={','.join(v)}" for k, v in PROVIDES.items())

    def tool(name, body):
        path = bin_ / name
        path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
        path.chmod(0o755)

    tool(
        "pkg",
        f"""\
        echo "pkg $*" >> {log}
        shift 2  # install -y
        for p in "$@"; do
          [ "$p" = "{broken}" ] && {{ echo "E: unable to locate package $p" >&2; exit 100; }}
          touch "{prefix}/installed-$p"
          for entry in {provides}; do
            [ "${{entry%%=*}}" = "$p" ] || continue
            for f in $(echo "${{entry#*=}}" | tr , ' '); do
              mkdir -p "$(dirname "{prefix}/$f")"; touch "{prefix}/$f"
              case $f in bin/python3) ;; bin/*) chmod +x "{prefix}/$f" ;; esac
            done
          done
        done
        """,
    )
    tool("dpkg", f'[ -e "{prefix}/installed-$2" ]\n')
    tool("uname", "echo aarch64\n")
    tool("phalanx", f'echo "phalanx $*" >> {log}\n')
    # The stand-in for Termux's python3 (tests install it as if `pkg install python` had run).
    python = textwrap.dedent(
        f"""\
        #!/bin/sh
        case "$*" in
          "-c import numpy") [ -e "{prefix}/lib/numpy-marker" ] ;;
          "-c import scikit_build_core") [ -e "{prefix}/skbuild" ] ;;
          "-m pip install scikit-build-core")
            echo "pip scikit-build-core" >> {log}
            touch "{prefix}/skbuild" ;;
          "-m pip install"*)
            echo "pip $* cache=$PHALANX_DEPS_CACHE deps=$PHALANX_DEPS" \
              "blas=$OPENBLAS_NUM_THREADS" >> {log} ;;
          *) exit 1 ;;
        esac
        """
    )
    return prefix, log, python


def run(tmp_path, prefix, python, source):
    env = {
        "PATH": f"{prefix / 'bin'}:/usr/bin:/bin",
        "PREFIX": str(prefix),
        "HOME": str(tmp_path / "home"),
    }
    return subprocess.run(
        ["bash", SCRIPT, str(source)], env=env, capture_output=True, text=True, timeout=60
    )


def install_python(prefix, python):
    py = prefix / "bin" / "python3"
    py.write_text(python)
    py.chmod(0o755)


def test_installs_missing_packages_then_phalanx_and_nothing_again(tmp_path):
    prefix, log, python = fake_termux(tmp_path)
    # python itself is in every Termux; the rest is missing.
    (prefix / "installed-python").touch()
    install_python(prefix, python)
    r = run(tmp_path, prefix, python, ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    calls = log.read_text().splitlines()
    (pkg_call,) = [c for c in calls if c.startswith("pkg ")]
    assert pkg_call.split()[3:] == [p for p in PROVIDES if p != "python"]
    assert "pip scikit-build-core" in calls
    (build,) = [c for c in calls if c.startswith("pip -m pip install --no-build-isolation")]
    assert f"--no-build-isolation {ROOT} " in build
    assert f"cache={tmp_path}/home/.cache/phalanx/deps deps=auto blas=1" in build
    assert calls[-1] == "phalanx doctor"

    log.write_text("")
    again = run(tmp_path, prefix, python, ROOT)
    assert again.returncode == 0, again.stdout + again.stderr
    second = log.read_text().splitlines()
    assert not [c for c in second if c.startswith("pkg ") or c == "pip scikit-build-core"]


def test_a_package_that_cannot_be_installed_is_named(tmp_path):
    prefix, log, python = fake_termux(tmp_path, broken="libopenblas")
    (prefix / "installed-python").touch()
    install_python(prefix, python)
    r = run(tmp_path, prefix, python, ROOT)
    assert r.returncode != 0
    assert "pkg install failed; run: pkg update && pkg install" in r.stderr
    # The packages before it were installed; it and those after it are named.
    assert r.stderr.splitlines()[-1].endswith("pkg install libopenblas pybind11")
    assert not [c for c in log.read_text().splitlines() if c.startswith("pip ")]


def test_not_termux_says_so(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = subprocess.run(["bash", SCRIPT, ROOT], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "'pkg' not found: this script is for Termux" in r.stderr
