# Thin wrapper over CMake. The two set-up commands of the README:
#   make run    installs dependencies, builds, and runs the main job
#   make test   installs dependencies, builds, and runs every test (release, then ASan+UBSan)
# The release build is tuned for this machine (-march=native: only its best SIMD target is
# compiled); the sanitizer build is not, so it compiles and tests every Highway target the
# machine can run (SSE4, AVX2, AVX-512, ...).
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: deps build build-asan run test test-release test-asan clean

deps:
	./scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DWHALE_SANITIZE=ON \
	  -DWHALE_FUZZ=ON -DWHALE_NATIVE=OFF -DCMAKE_CXX_COMPILER=clang++-14
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	./scripts/demo.sh $(BUILD)/apps/whale/whale

test-release: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-asan: build-asan
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

test: test-release test-asan

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
