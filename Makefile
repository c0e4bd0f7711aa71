# Quilt -- the two commands of the README, and a few more.
#
#   make demo   install what is missing, build, run the built-in demo
#   make test   install what is missing, build, run every test, then run
#               them again under AddressSanitizer + UBSan
#
# Both work on a fresh Debian 12 machine with only git and make: missing
# Debian packages are installed with apt-get (as root, or through sudo).

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 30

# Debian packages the build, the tests and the plots need.
DEB_PACKAGES = gcc clang libclang-rt-dev make cmake pkg-config libuv1-dev libcmocka-dev \
               gnuplot-nox iproute2 iptables ca-certificates

.PHONY: all deps build test test-fast test-asan demo fuzz install clean

PREFIX ?= /usr/local

all: build

# The tests also use a standard STUN client (coturn's turnutils_natdiscovery)
# against the bootstrap server.
TEST_PACKAGES = coturn

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES) $(EXTRA_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "quilt: installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

test: EXTRA_PACKAGES = $(TEST_PACKAGES)
test: test-fast test-asan

test-fast: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DQUILT_SANITIZE=ON \
	  -DCMAKE_C_COMPILER=clang >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	QUILT_TEST_SCALE=small ctest --test-dir $(BUILD_ASAN) --output-on-failure -j $(JOBS)

demo: build
	./$(BUILD)/quilt demo

# Runs every libFuzzer target for FUZZ_SECONDS each, starting from its corpus.
fuzz: deps
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DQUILT_FUZZ=ON -DCMAKE_C_COMPILER=clang >/dev/null
	cmake --build $(BUILD_FUZZ) -j $(JOBS)
	@for f in fuzz/fuzz_*.c; do \
	  t=$$(basename $$f .c); mkdir -p $(BUILD_FUZZ)/corpus-$$t; \
	  echo "== $$t"; \
	  ./$(BUILD_FUZZ)/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    $(BUILD_FUZZ)/corpus-$$t fuzz/corpus/$$t || exit 1; \
	done

# Installs the quilt program, libquilt.a, quilt.h, quilt.pc and the data.
install: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
