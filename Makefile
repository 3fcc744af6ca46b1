# Thin wrapper over CMake. `make` builds, `make test` runs the whole suite, `make run` runs the example.
BUILD ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build test run asan tsan fuzz fuzz-build clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The main job on the bundled example model (made by scripts/make_example.py): the model on OCL,CPU with
# OCL failing at its 3rd inference; the failover event, and outputs that match a fault-free REF run.
EXAMPLE = examples/tiny_cnn.onnx --shape batch=2
EXAMPLE_IN = --input image=random:1
run: build
	@rm -rf $(BUILD)/example
	$(BUILD)/bin/safeinfer inspect $(EXAMPLE) --devices OCL,CPU
	@echo "--- fault-free reference run on REF"
	$(BUILD)/bin/safeinfer run $(EXAMPLE) $(EXAMPLE_IN) --devices REF --output-dir $(BUILD)/example/ref
	@echo "--- OCL,CPU with OCL failing at its 3rd inference (--faults OCL.infer=3)"
	$(BUILD)/bin/safeinfer run $(EXAMPLE) $(EXAMPLE_IN) --devices OCL,CPU --repeat 5 --faults OCL.infer=3 --report $(BUILD)/example/report.json --output-dir $(BUILD)/example/failover
	@echo "--- outputs after the failover vs the fault-free run"
	$(BUILD)/bin/safeinfer compare $(BUILD)/example/ref $(BUILD)/example/failover
	@echo "report: $(BUILD)/example/report.json" 

# The suite under AddressSanitizer and UndefinedBehaviorSanitizer (optimised, so the CNN cases stay quick).
# PoCL leaks a few of its own LLVM objects when it compiles kernels into a cold cache: suppressed (only
# libpocl/libLLVM frames, see src/device/ocl/lsan-pocl.supp).
asan:
	@LSAN_OPTIONS=suppressions=$(CURDIR)/src/device/ocl/lsan-pocl.supp \
	  $(MAKE) --no-print-directory test BUILD=build-asan BUILD_TYPE=RelWithDebInfo CMAKE_FLAGS="-DSI_SANITIZE=address,undefined $(CMAKE_FLAGS)"

# The fail-safe, fault-injection and executor tests under ThreadSanitizer.
tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSI_SANITIZE=thread $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-tsan -j$(JOBS) --target test_failsafe test_faults test_fault_matrix test_exec_mock
	@cd build-tsan && ctest --output-on-failure -R 'test_(failsafe|faults|fault_matrix|exec_mock)'

# libFuzzer harnesses (tests/fuzz/README.md), built with clang, ASan and UBSan, each run for FUZZ_SECONDS.
# The corpus grows in build-fuzz/fuzz-corpus; findings land in build-fuzz/fuzz-artifacts and fail the target.
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES ?= model model_file npy pb config
fuzz-build:
	@SI_WITH_FUZZ=1 bash scripts/install-deps.sh
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSI_FUZZ=ON -DSI_SANITIZE=address,undefined \
	  -DSI_WITH_CPU=OFF -DSI_WITH_OCL=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target $(addprefix fuzz_,$(FUZZ_HARNESSES))

fuzz: fuzz-build
	@bash tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_HARNESSES)

clean:
	rm -rf build build-asan build-tsan build-fuzz
