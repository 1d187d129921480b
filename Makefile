# Entry points. `make test` is what CI runs (.ci/run); `make demo` generates
# text with a freshly made tiny model. Both install missing dependencies first.
PRESET ?= release
BUILD := build/$(PRESET)
JOBS ?= $(shell nproc)
DEMO_MODEL := build/demo-model

.PHONY: all deps build binary test demo demo-model serve asan format clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@test -f $(BUILD)/build.ninja || cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) -LE "gpu|fresh|emulated" --output-on-failure -j $(JOBS)

# Only the binary: the demo does not wait for the test programs to compile.
binary: deps
	@test -f $(BUILD)/build.ninja || cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target r1serve

demo: demo-model
	$(BUILD)/r1serve generate --model $(DEMO_MODEL) --chat "Why is the sky blue?" --max-tokens 48 --seed 7

# The OpenAI-compatible server on 127.0.0.1:8000 with the demo model.
serve: binary demo-model
	$(BUILD)/r1serve serve --model $(DEMO_MODEL) --served-model-name r1-demo --host 127.0.0.1 --port 8000

demo-model: binary
	@test -f $(DEMO_MODEL)/config.json || $(BUILD)/r1serve make-test-model --arch qwen2 --size tiny --dtype bf16 --seed 1 --out $(DEMO_MODEL)

asan:
	@$(MAKE) --no-print-directory build PRESET=asan
	ctest --test-dir build/asan -LE 'gpu|numerics|fresh|deploy' --output-on-failure -j $(JOBS)

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build
