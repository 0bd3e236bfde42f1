# The two commands of the quick start: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3
JOBS ?= 2
BUILD_DIR := build/py
STAMP := build/.bootstrap-stamp

.PHONY: all bootstrap build test test-python test-cpp test-asan demo format lint clean

all: build

$(STAMP): scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	@mkdir -p build && touch $(STAMP)

bootstrap: $(STAMP)

# Editable install: the extension is built in build/py (reused between builds), together with
# the GoogleTest binary.
build: $(STAMP)
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PYTHON) -m pip install -q --no-build-isolation \
	  -C cmake.define.PHALANX_BUILD_TESTS=ON -e .

test: build test-cpp test-python

test-cpp: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure --timeout 300

test-python: build
	$(PYTHON) -m pytest tests/python

# ASan + UBSan build of the core and its GoogleTests, and the Python tests against it.
ASAN_DIR := build/asan
test-asan: $(STAMP)
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPHALANX_SANITIZE=ON \
	  -DPHALANX_BUILD_TESTS=ON -DPython_EXECUTABLE=$$(which $(PYTHON))
	cmake --build $(ASAN_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=0 ctest --test-dir $(ASAN_DIR) --output-on-failure
	PHALANX_EXTENSION_DIR=$(ASAN_DIR) ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0 \
	  LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	  $(PYTHON) -m pytest tests/python -x -q -p no:cacheprovider

demo: build
	$(PYTHON) examples/fashion_mnist.py --epochs 1

format:
	clang-format -i $$(git ls-files 'csrc/*.h' 'csrc/*.cc' 'tests/cpp/*.cc')
	ruff format python tests examples benchmarks
	ruff check --fix python tests examples benchmarks

lint:
	clang-format --dry-run -Werror $$(git ls-files 'csrc/*.h' 'csrc/*.cc' 'tests/cpp/*.cc')
	ruff check python tests examples benchmarks

clean:
	rm -rf build
