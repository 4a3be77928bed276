# gemma4: plain `make` builds build/gemma4 and build/libgemma4.a; `make test` runs the suite.
CC      ?= cc
CFLAGS  ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc -Iinclude -pthread -march=x86-64-v3 -mtune=native
override LDLIBS += -ljansson -lm -pthread
BUILD   ?= build

LIB_SRC  := $(wildcard src/util/*.c src/io/*.c src/ops/*.c src/model/*.c src/sample/*.c src/grammar/*.c src/api/*.c src/tok/*.c src/chat/*.c)
CLI_SRC  := $(wildcard src/cli/*.c src/serve/*.c)
TEST_SRC := $(wildcard tests/unit/test_*.c)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/released_configs.o
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TESTS    := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test unit-test fixture-test asan clean
all: $(BUILD)/gemma4 $(BUILD)/libgemma4.a

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/gen/released_configs.o: $(BUILD)/gen/released_configs.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libgemma4.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The binary also carries the HTTP server (libmicrohttpd).
$(BUILD)/gemma4: $(CLI_OBJ) $(BUILD)/libgemma4.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lmicrohttpd

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libgemma4.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $< $(BUILD)/libgemma4.a -o $@ $(LDLIBS)

# Every tests/unit/test_*.c is a program; the CLI tests run $(BUILD)/gemma4.
test: all $(TESTS) $(BUILD)/tests/llama_logits $(BUILD)/tests/llama_tokenize
	@set -e; for t in $(TESTS); do echo "== $$t"; GEMMA4=$(BUILD)/gemma4 LLAMA_LOGITS=$(BUILD)/tests/llama_logits \
	    LLAMA_TOKENIZE=$(BUILD)/tests/llama_tokenize $$t; done

# llama.cpp as the independent second implementation (tools/fetch_llama.sh
# fetches its prebuilt libraries and headers); built without our sanitizers.
LLAMA_DIR ?= build/llama
LLAMA_LIB := $(LLAMA_DIR)/package/bins/linux-x64
$(BUILD)/tests/llama_logits: tests/interop/llama_logits.c
	@test -f $(LLAMA_DIR)/include/llama.h || { echo "llama.cpp headers missing: run tools/fetch_llama.sh" >&2; exit 1; }
	@mkdir -p $(dir $@)
	cc -O1 -std=c11 -I$(LLAMA_DIR)/include $< -L$(LLAMA_LIB) -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so \
	    -l:libggml-base.so -Wl,-rpath,$(abspath $(LLAMA_LIB)) -o $@

$(BUILD)/tests/llama_bench: tests/interop/llama_bench.c
	@test -f $(LLAMA_DIR)/include/llama.h || { echo "llama.cpp headers missing: run tools/fetch_llama.sh" >&2; exit 1; }
	@mkdir -p $(dir $@)
	cc -O2 -std=c11 -I$(LLAMA_DIR)/include $< -L$(LLAMA_LIB) -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so \
	    -l:libggml-base.so -Wl,-rpath,$(abspath $(LLAMA_LIB)) -o $@
$(BUILD)/tests/llama_tokenize: tests/interop/llama_tokenize.c
	@test -f $(LLAMA_DIR)/include/llama.h || { echo "llama.cpp headers missing: run tools/fetch_llama.sh" >&2; exit 1; }
	@mkdir -p $(dir $@)
	cc -O1 -std=c11 -D_GNU_SOURCE -I$(LLAMA_DIR)/include $< -L$(LLAMA_LIB) -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so \
	    -l:libggml-base.so -ljansson -Wl,-rpath,$(abspath $(LLAMA_LIB)) -o $@

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer, in its own build directory.
asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" test

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# The released configurations, compiled in so `gemma4 synth --arch e2b` works anywhere.
$(BUILD)/gen/released_configs.c: $(wildcard data/configs/*/config.json)
	@mkdir -p $(dir $@)
	@{ echo '/* generated from data/configs by the Makefile */'; \
	   echo '#include "model/released_configs.h"'; \
	   echo '#include <stddef.h>'; \
	   echo 'const g4_released_config g4_released_configs[] = {'; \
	   for f in $^; do a=$$(basename $$(dirname $$f)); echo "{\"$$a\","; sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$$/\\n"/' $$f; echo '},'; done; \
	   echo '{NULL, NULL}};'; } > $@

# ---- CUDA backend (issue #8, docs/cuda.md) ----
# `make cuda` builds build-cuda/gemma4 and build-cuda/libgemma4.a with the
# kernels of src/cuda (nvcc, sm_90, cuBLAS). Every other build links the stub
# src/cuda/backend_none.c instead, so plain `make` needs no CUDA.
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
NVCCFLAGS ?= -O3 -arch=sm_90 -std=c++17 -lineinfo
ifeq ($(G4_CUDA),1)
CUDA_OBJ := $(patsubst %.cu,$(BUILD)/obj/%.o,$(wildcard src/cuda/*.cu))
override LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart_static -ldl -lrt -lstdc++
else
CUDA_OBJ := $(BUILD)/obj/src/cuda/backend_none.o
endif
$(BUILD)/libgemma4.a: $(CUDA_OBJ)

$(BUILD)/obj/%.o: %.cu src/cuda/gpu.h src/cuda/backend.h $(wildcard src/cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -D_GNU_SOURCE -Isrc -Iinclude -Xcompiler -Wall,-Wextra,-Werror -c $< -o $@

# GPU tests (tools/gpu_test.sh runs them on a machine with a GPU; they also pass without one)
$(BUILD)/tests/cuda/%: tests/cuda/%.c $(BUILD)/libgemma4.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $< $(BUILD)/libgemma4.a -o $@ $(LDLIBS)

$(BUILD)/tests/cuda/%: tests/cuda/%.cu $(BUILD)/libgemma4.a src/cuda/gpu.h tests/cuda/gpu_test_util.cuh
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -D_GNU_SOURCE -Isrc -Iinclude $< $(BUILD)/libgemma4.a -o $@ -ljansson -lcublas

.PHONY: cuda
cuda:
	$(MAKE) BUILD=build-cuda G4_CUDA=1 all build-cuda/tests/test_fixtures build-cuda/tests/cuda/test_gpu \
	    build-cuda/tests/cuda/test_attention build-cuda/tests/cuda/test_gemv build-cuda/tests/cuda/test_gemm
