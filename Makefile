# Thin wrapper over CMake. `make` builds, `make test` runs the whole suite, `make run` runs the example.
BUILD ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build test run asan clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The main job on the bundled example model (made by scripts/make_example.py).
run: build
	$(BUILD)/bin/safeinfer inspect examples/tiny_cnn.onnx
	$(BUILD)/bin/safeinfer run examples/tiny_cnn.onnx --devices REF --shape batch=2 --input image=random:1 --output-dir $(BUILD)/example-out

# The suite under AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	@$(MAKE) --no-print-directory test BUILD=build-asan BUILD_TYPE=Debug CMAKE_FLAGS="-DSI_SANITIZE=address,undefined $(CMAKE_FLAGS)"

clean:
	rm -rf build build-asan
