# Thin wrapper over CMake. `make` builds, `make test` runs the whole suite, `make run` runs the example,
# `make install [PREFIX=/usr/local] [DESTDIR=]` installs, `make uninstall` removes what it installed.
BUILD ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
PREFIX ?= /usr/local
DESTDIR ?=
# The files the last `make install` wrote (DESTDIR included), for `make uninstall`.
INSTALL_MANIFEST ?= $(BUILD)/installed-files.txt

.PHONY: all deps build test run asan tsan soak fuzz fuzz-build clean install install-files uninstall

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# The suite's model generators and ONNX Runtime comparisons need python3-onnx and python3-numpy: `make test`
# installs them too (scripts/install-deps.sh with SI_WITH_PYTHON=1).
test: export SI_WITH_PYTHON = 1
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
# PoCL leaks a few of its own LLVM objects when it compiles kernels into a cold cache: suppressed (only stacks
# through its work-group codegen, pocl_check_kernel_disk_cache; see src/device/ocl/lsan-pocl.supp).
asan:
	@LSAN_OPTIONS=suppressions=$(CURDIR)/src/device/ocl/lsan-pocl.supp \
	  $(MAKE) --no-print-directory test BUILD=build-asan BUILD_TYPE=RelWithDebInfo CMAKE_FLAGS="-DSI_SANITIZE=address,undefined $(CMAKE_FLAGS)"

# The fail-safe, fault-injection, isolation and executor tests under ThreadSanitizer.
tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSI_SANITIZE=thread $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-tsan -j$(JOBS) --target test_failsafe test_faults test_fault_matrix test_exec_mock test_failsafe_mock test_failsafe_api test_isolate test_control test_fold test_hfa safeinfer_worker test_device_ops
	@cd build-tsan && ctest --output-on-failure -R 'test_(failsafe|faults|fault_matrix|exec_mock|failsafe_mock|failsafe_api|isolate|control|fold|hfa)$$'
	@# the CPU device's plans for new shapes: requests on 4 threads at different shapes with plan_cache=2 (cpu_plans)
	@build-tsan/bin/test_device_ops CPU Conv

# The soak: SOAK_SECONDS (600) of 4 requests on 4 threads against ResNet-18 (half width) on OCL,CPU and
# OCL,CPU,REF with OCL isolated and random faults of every stage and effect, every output checked against REF;
# fails on a wrong output, a failed request or resident memory growing 5% or more after the warm-up.
SOAK_SECONDS ?= 600
soak: build
	@cmake --build $(BUILD) -j$(JOBS) --target soak safeinfer_worker
	@bash tests/soak/run.sh $(BUILD) $(SOAK_SECONDS) $(BUILD)/tests/soak --max-rss-growth 5

# The shared and static library, safeinfer.h, the CLI, safeinfer.pc, the CMake package
# (find_package(safeinfer) -> safeinfer::safeinfer) and the Python package (python/install.cmake: the prefix's
# site folder for Debian's python3, printed). install-files installs an existing build.
install: build
	@$(MAKE) --no-print-directory install-files

install-files:
	@DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"
	@sed 's|^|$(DESTDIR)|' $(BUILD)/install_manifest.txt > "$(INSTALL_MANIFEST)"
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig || true; fi
	@echo "installed into $(DESTDIR)$(PREFIX); the list of files is in $(INSTALL_MANIFEST) (make uninstall)"
	@site=$$(sed -n 's|/safeinfer/__init__.py$$||p' "$(INSTALL_MANIFEST)" | head -1); site=$${site#"$(DESTDIR)"}; \
	  if [ -n "$$site" ]; then echo "python: import safeinfer with PYTHONPATH=$$site (where python3 does not search it)"; fi

uninstall:
	@cmake -DMANIFEST="$(INSTALL_MANIFEST)" -P cmake/uninstall.cmake

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
