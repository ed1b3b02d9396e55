# Thin wrapper over CMake. The two set-up commands of the README:
#   make run    installs dependencies, builds, and runs the main job
#   make test   installs dependencies, builds, and runs every test (release, ASan+UBSan, and
#               the kernels on every SIMD target)
# The release and sanitizer builds are tuned for this machine (-march=native), which compiles
# only its best SIMD target; a third build without it (kernels only) compiles every Highway
# target and tests each one the machine can run (SSE4, AVX2, AVX-512, ...).
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
TARGETS_BUILD ?= build-targets

.PHONY: deps build build-asan run test test-release test-asan test-targets clean

deps:
	./scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DWHALE_NATIVE=ON
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DWHALE_SANITIZE=ON \
	  -DWHALE_FUZZ=ON -DWHALE_NATIVE=ON -DCMAKE_CXX_COMPILER=clang++-14
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	./scripts/demo.sh $(BUILD)/apps/whale/whale

test-release: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-asan: build-asan
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

test-targets: deps
	cmake -S . -B $(TARGETS_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DWHALE_NATIVE=OFF
	cmake --build $(TARGETS_BUILD) -j $(JOBS) --target kernels_test
	$(TARGETS_BUILD)/tests/kernels/kernels_test

test: test-release test-asan test-targets

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TARGETS_BUILD)
