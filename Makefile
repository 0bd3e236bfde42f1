# The two commands of the quick start: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3
JOBS ?= 2
BUILD_DIR := build/py
STAMP := build/.bootstrap-stamp

.PHONY: all bootstrap build test test-python test-cpp test-asan test-tsan demo format lint clean bench-dist bench-scale

all: build

$(STAMP): scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	@mkdir -p build && touch $(STAMP)

bootstrap: $(STAMP)

# Editable install: the extension is built in build/py (reused between builds), together with
# the GoogleTest binary. Our builds treat warnings as errors (a user's `pip install` does not).
build: $(STAMP)
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PYTHON) -m pip install -q --no-build-isolation \
	  -C cmake.define.PHALANX_BUILD_TESTS=ON -C cmake.define.PHALANX_WERROR=ON -e .

test: build test-cpp test-python

test-cpp: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure --timeout 300

test-python: build
	$(PYTHON) -m pytest tests/python

# ASan + UBSan build of the core, its GoogleTests, and the Python tests run against it (the
# sanitizer runtimes preloaded into the interpreter). Run before landing memory-touching changes.
ASAN_DIR := build/asan
ASAN_RT := $$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)
test-asan: $(STAMP)
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPHALANX_SANITIZE=ON \
	  -DPHALANX_BUILD_TESTS=ON -DPython_EXECUTABLE=$$(which $(PYTHON))
	cmake --build $(ASAN_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 ctest --test-dir $(ASAN_DIR) --output-on-failure
	ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  LD_PRELOAD="$(ASAN_RT)" scripts/run_with_extension.sh $(ASAN_DIR) -m pytest tests/python -x -q \
	  -p no:cacheprovider $(ASAN_PYTEST_ARGS)

# ThreadSanitizer build: the thread tests (tests/cpp/test_threads.cc, tests/python/test_threads.py)
# with the TSan runtime preloaded into the interpreter. OMP_NUM_THREADS=1: Debian's libgomp
# and libdnnl are not instrumented, so TSan cannot see the ordering their barriers give and
# would report every OpenMP parallel region as a race; with one OpenMP thread per caller the
# reports are about phalanx's own state shared by the callers' threads. scripts/tsan.supp
# holds the one third-party false positive met (glibc's reuse of thread stacks), explained.
# halt_on_error: the first race fails the run (the Python workloads run in subprocesses that
# inherit TSAN_OPTIONS, and a report there is a non-zero exit, hence a failing test).
TSAN_DIR := build/tsan
TSAN_RT := $$(gcc -print-file-name=libtsan.so)
TSAN_ENV := OMP_NUM_THREADS=1 PHX_THREAD_OMP=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:exitcode=66:suppressions=$(CURDIR)/scripts/tsan.supp
test-tsan: $(STAMP)
	cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPHALANX_TSAN=ON \
	  -DPHALANX_BUILD_TESTS=ON -DPython_EXECUTABLE=$$(which $(PYTHON))
	cmake --build $(TSAN_DIR) -j $(JOBS) --target phalanx_core_tests _C
	$(TSAN_ENV) $(TSAN_DIR)/phalanx_core_tests --gtest_filter='Threads.*'
	# The runtime is preloaded into the real interpreter only (PHX_WRAP): bash, and so the
	# script and a pyenv shim, crash at start with TSan preloaded.
	$(TSAN_ENV) PHX_THREAD_ITERS=0.2 PHX_THREAD_TIMEOUT=600 PHX_WRAP="env LD_PRELOAD=$(TSAN_RT)" \
	  PYTHON=$$($(PYTHON) -c 'import sys; print(sys.executable)') scripts/run_with_extension.sh $(TSAN_DIR) -m pytest tests/python/test_threads.py -x -q \
	  -p no:cacheprovider

# Data-parallel training on 2 local ranks (the launcher gives each rank one of the 2 cores).
demo: build
	$(PYTHON) -m phalanx.distributed.launch --nproc 2 examples/fashion_mnist.py --epochs 4

# phalanx vs torch.distributed (gloo) on 2 ranks: all-reduce latency/bandwidth and DDP iteration
# time; as root also across network namespaces with links limited to 1 Gbit/s and 100 Mbit/s.
bench-dist: build
	$(PYTHON) benchmarks/dist_bench.py $(BENCH_DIST_ARGS)

# 138 local ranks (one thread each, own loopback addresses) train a small MLP with DDP for 20
# steps: rendezvous time, step time, per-rank memory, the store's threads/memory/CPU
# (docs/scale.md). About 10 GiB of RAM; a few minutes on 2 cores.
bench-scale: build
	$(PYTHON) benchmarks/scale_bench.py $(BENCH_SCALE_ARGS)

format:
	clang-format -i $$(git ls-files 'csrc/*.h' 'csrc/*.cc' 'tests/cpp/*.cc' 'tests/layering/*.cc')
	ruff format python tests examples benchmarks
	ruff check --fix python tests examples benchmarks

# Includes name the layer folder ("core/tensor.h"); a relative "../" include would step around
# the per-layer header views that enforce the layering (cmake/PhalanxLayers.cmake).
lint:
	clang-format --dry-run -Werror $$(git ls-files 'csrc/*.h' 'csrc/*.cc' 'tests/cpp/*.cc' 'tests/layering/*.cc')
	ruff check python tests examples benchmarks
	$(PYTHON) scripts/check_notebooks.py
	@! git grep -nE '^\s*#\s*include\s*"\.\./' -- csrc tests benchmarks || \
	  { echo 'lint: relative "../" includes step around the layering; include "layer/file.h"'; exit 1; }

clean:
	rm -rf build

# The phone configuration on the phone's CPU, emulated (issue 11): an arm64 sysroot from
# Debian's arm64 packages, a cross build with g++-aarch64-linux-gnu and the bundled oneDNN 3.x
# and Gloo (PHALANX_DEPS=bundled, from Debian's source packages unless BUNDLED_ONEDNN_SOURCE /
# BUNDLED_GLOO_SOURCE name others), then every GoogleTest and the Python suite under
# qemu-aarch64 -cpu cortex-a76 (scripts/aarch64_test.sh). Slow: hours for the whole Python suite;
# AARCH64_PYTEST_ARGS narrows it. Not part of `make test`.
AARCH64_DIR := build/aarch64
AARCH64_SYSROOT ?= $(CURDIR)/$(AARCH64_DIR)/sysroot
AARCH64_DEPS_CACHE ?= $(CURDIR)/$(AARCH64_DIR)/_deps
BUNDLED_ONEDNN_SOURCE ?= $(CURDIR)/build/srcpkgs/onednn_3.7.2+ds.orig.tar.xz
BUNDLED_GLOO_SOURCE ?= $(CURDIR)/build/srcpkgs/gloo_0.0~git20231202.5354032.orig.tar.xz
AARCH64_PYTEST_ARGS ?= tests/python
.PHONY: test-aarch64 srcpkgs
srcpkgs: $(BUNDLED_ONEDNN_SOURCE) $(BUNDLED_GLOO_SOURCE)
$(CURDIR)/build/srcpkgs/%.orig.tar.xz:
	bash scripts/fetch_srcpkgs.sh build/srcpkgs
test-aarch64: $(STAMP) srcpkgs
	bash scripts/aarch64_sysroot.sh $(AARCH64_SYSROOT)
	PHALANX_AARCH64_SYSROOT=$(AARCH64_SYSROOT) QEMU_CPU=cortex-a76 QEMU_LD_PREFIX=$(AARCH64_SYSROOT) \
	  bash scripts/aarch64_binfmt.sh cmake -S . -B $(AARCH64_DIR)/build -G Ninja \
	  -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/toolchains/aarch64-linux-gnu.cmake \
	  -DCMAKE_BUILD_TYPE=Release -DPHALANX_BUILD_TESTS=ON -DPHALANX_DEPS=bundled \
	  -DPHALANX_DEPS_CACHE=$(AARCH64_DEPS_CACHE) \
	  -DPHALANX_ONEDNN_SOURCE=$(BUNDLED_ONEDNN_SOURCE) -DPHALANX_GLOO_SOURCE=$(BUNDLED_GLOO_SOURCE) \
	  -DPython_EXECUTABLE=$(AARCH64_SYSROOT)/usr/bin/python3.11 \
	  -DPython_INCLUDE_DIR=$(AARCH64_SYSROOT)/usr/include/python3.11 \
	  -DPython_SOABI=cpython-311-aarch64-linux-gnu \
	  -Dpybind11_DIR=$$($(PYTHON) -m pybind11 --cmakedir)
	PHALANX_AARCH64_SYSROOT=$(AARCH64_SYSROOT) QEMU_CPU=cortex-a76 QEMU_LD_PREFIX=$(AARCH64_SYSROOT) \
	  bash scripts/aarch64_binfmt.sh cmake --build $(AARCH64_DIR)/build -j $(JOBS)
	AARCH64_TORCH_DIR=$(AARCH64_DEPS_CACHE)/torch-2.13.0-cp311-aarch64 \
	  bash scripts/aarch64_binfmt.sh bash scripts/aarch64_test.sh $(AARCH64_DIR)/build \
	  $(AARCH64_SYSROOT) $(AARCH64_PYTEST_ARGS)

# Which oneDNN implementation each primitive kind runs in one training step of every zoo
# model, on the phone's CPU (qemu-aarch64 -cpu cortex-a76, the test-aarch64 build); a `ref` in
# the hot path is a defect (issue 11). Results in the README (phones section).
.PHONY: dispatch-aarch64
dispatch-aarch64:
	QEMU_CPU=cortex-a76 QEMU_LD_PREFIX=$(AARCH64_SYSROOT) PYTHON=$(AARCH64_SYSROOT)/usr/bin/python3.11 \
	  PYTHONPATH=/usr/lib/python3/dist-packages bash scripts/aarch64_binfmt.sh \
	  scripts/run_with_extension.sh $(AARCH64_DIR)/build benchmarks/dispatch_table.py --fail-on-ref

# The phone install path proven here (issue 11): `python -m build --sdist`, pip install into a
# fresh venv with PHALANX_DEPS=bundled (oneDNN cached in BUNDLED_DEPS_CACHE across runs), ldd
# shows neither oneDNN nor Gloo, and the Python suite passes against the installed package.
BUNDLED_DEPS_CACHE ?= $(CURDIR)/build/_deps
SDIST_PYTEST_ARGS ?=
.PHONY: test-sdist
test-sdist: $(STAMP) srcpkgs
	PHALANX_DEPS_CACHE=$(BUNDLED_DEPS_CACHE) bash scripts/sdist_check.sh build/sdist-check \
	  $(BUNDLED_ONEDNN_SOURCE) $(BUNDLED_GLOO_SOURCE) $(SDIST_PYTEST_ARGS)

# oneDNN 3.x check (phones build 3.x, Debian ships 2.6): the same sources built against
# oneDNN 3.2 from PyPI wheels (GNU OpenMP runtime, like the phone builds) in a private prefix
# under build/onednn3, then the GoogleTests and the Python tests run against that build. The
# Python run goes through scripts/run_with_extension.sh, as test-asan's does, so the tests and
# every process they start import that build, never the editable install.
# ONEDNN3_TESTS narrows the Python run (default: the whole suite).
ONEDNN3_TESTS ?= tests/python
ONEDNN3_DIR := build/onednn3
ONEDNN3_PREFIX := $(CURDIR)/$(ONEDNN3_DIR)/prefix
ONEDNN3_WHEELS := onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0
.PHONY: test-onednn3
test-onednn3: $(STAMP)
	test -f $(ONEDNN3_PREFIX)/lib/cmake/dnnl/dnnl-config.cmake || \
	  $(PYTHON) -m pip install -q --no-deps --prefix $(ONEDNN3_PREFIX) $(ONEDNN3_WHEELS)
	cmake -S . -B $(ONEDNN3_DIR)/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DPHALANX_BUILD_PYTHON=ON -DPHALANX_BUILD_TESTS=ON \
	  -Ddnnl_DIR=$(ONEDNN3_PREFIX)/lib/cmake/dnnl -DPython_EXECUTABLE=$$(which $(PYTHON))
	cmake --build $(ONEDNN3_DIR)/build -j $(JOBS)
	ctest --test-dir $(ONEDNN3_DIR)/build --output-on-failure --timeout 300; cpp=$$?; \
	scripts/run_with_extension.sh $(ONEDNN3_DIR)/build -c 'import phalanx; \
	  v = phalanx._C._onednn_version(); print("phalanx._C:", phalanx._C.__file__, "oneDNN", v); \
	  assert "/$(ONEDNN3_DIR)/build/pkg." in phalanx._C.__file__ and v[0] == 3' && \
	scripts/run_with_extension.sh $(ONEDNN3_DIR)/build -m pytest $(ONEDNN3_TESTS) \
	  -p no:cacheprovider; \
	py=$$?; echo "test-onednn3: GoogleTests exit $$cpp, Python tests exit $$py"; \
	test $$cpp -eq 0 -a $$py -eq 0

# Issue 5's benchmark suite: phalanx against PyTorch (CPU) on LeNet-5, ResNet-18, MobileNet-v1
# and ResNet-50 at 1 and 2 threads, plus per-op times; markdown tables on stdout, all numbers
# in benchmarks/results/latest.json. BENCH_ARGS="--quick" for a smoke run.
.PHONY: bench
bench: build
	$(PYTHON) benchmarks/run.py $(BENCH_ARGS)

# Issue 17's phone operating point only (per-rank batches LeNet-5 32, ResNet-18 16,
# MobileNet-v1 8, ResNet-50 4, at 1 and 2 threads) with the per-op table; `make bench` runs
# these rows beside the default batches.
.PHONY: bench-phone
bench-phone: build
	$(PYTHON) benchmarks/run.py --points phone --no-memory $(BENCH_ARGS)

# Issue 17's overhead measure: the share of a LeNet-5 b32 training step's CPU time outside the
# compute kernels, from perf's sampled stacks (docs/speed.md). Needs linux-perf.
.PHONY: bench-overhead
bench-overhead: build
	$(PYTHON) benchmarks/overhead_perf.py --build $(BUILD_DIR) --show 25 $(OVERHEAD_ARGS)

# Issue 12's emulated phone cluster (root only): DDP(balance=...) adapting to phones of unequal
# CPU caps, a phone throttled and restored mid-run, no churn on equal phones. Minutes long and
# sensitive to the machine's load, so not in `make test`; run it on an otherwise idle machine.
.PHONY: test-cluster
test-cluster: build
	$(PYTHON) -m pytest tests/cluster -q -s -p no:cacheprovider

# Issue 12's benchmark: equal shares, balanced shares, the wimpy-nodes weighting and PyTorch DDP
# on 4 emulated phones (0.6, 0.6, 0.3, 0.15 of a core; 1 Gbit/s and 100 Mbit/s links), with the
# ideal step time. Root only; HETERO_ARGS="--steps 20" for a shorter run.
.PHONY: bench-heterogeneous
bench-heterogeneous: build
	$(PYTHON) benchmarks/heterogeneous_bench.py $(HETERO_ARGS)

# Issue 13: fused-tile training of Tiny-YOLOv2 on emulated phones (root; ~30 min on an idle
# machine). SPATIAL_BENCH_ARGS="--quick" for one small point.
.PHONY: bench-spatial
bench-spatial: build
	$(PYTHON) benchmarks/spatial_bench.py $(SPATIAL_BENCH_ARGS)

# Issue 15: elastic training's recovery times (SIGKILL -> first step, SIGSTOP -> first step,
# rejoin stall) on 3 emulated phones (root) or, without them, local ranks; about 2 minutes.
# ELASTIC_BENCH_ARGS="--where local --repeat 1" for a quick run.
.PHONY: bench-elastic
bench-elastic: build
	$(PYTHON) benchmarks/elastic_bench.py $(ELASTIC_BENCH_ARGS)
