# Stasis build. `make` builds build/stasis; `make test` builds and runs the suite.
CC      ?= gcc
CFLAGS  ?= -O2 -g
CFLAGS  += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
           -std=gnu11 -D_GNU_SOURCE -Isrc -Ibuild/proto
LDLIBS  += -lprotobuf-c

VERSION := 0.1.0
PROTOS  := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,build/proto/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)
SRCS    := $(wildcard src/*/*.c)
OBJS    := $(patsubst src/%.c,build/obj/%.o,$(SRCS)) $(PROTO_C:.c=.o)

all: build/stasis

build/stasis: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/proto/%.pb-c.c build/proto/%.pb-c.h: proto/%.proto
	@mkdir -p build/proto
	protoc-c --proto_path=proto --c_out=build/proto $<

build/proto/%.pb-c.o: build/proto/%.pb-c.c
	$(CC) $(CFLAGS) -c -o $@ $<

build/obj/%.o: src/%.c $(PROTO_H) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DSTASIS_VERSION='"$(VERSION)"' -c -o $@ $<

tests: build/stasis
	$(MAKE) -C tests

test: all tests
	tests/run.sh

# Fuzzers (fuzz/README.md): libFuzzer targets over the RPC decoder and the
# image readers, every stasis object but main built again with clang and
# ASan/UBSan; the seed generator is a plain program.
FUZZ_CC     ?= clang
FUZZ_CFLAGS ?= -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJS   := $(patsubst build/obj/%,build/fuzz/obj/%,$(filter-out build/obj/cli/main.o,$(OBJS:build/proto/%=build/obj/proto/%)))
FUZZERS     := build/fuzz/fuzz_rpc build/fuzz/fuzz_image

fuzz: $(FUZZERS) build/fuzz/gen_rpc_seeds

build/fuzz/obj/%.o: build/%.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -std=gnu11 -D_GNU_SOURCE -Isrc -Ibuild/proto -c -o $@ $<

build/fuzz/obj/%.o: src/%.c $(PROTO_H) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -std=gnu11 -D_GNU_SOURCE -Isrc -Ibuild/proto \
		-DSTASIS_VERSION='"$(VERSION)"' -c -o $@ $<

build/fuzz/%: fuzz/%.c $(FUZZ_OBJS) $(wildcard src/*/*.h)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -std=gnu11 -D_GNU_SOURCE -Isrc -Ibuild/proto \
		-o $@ $< $(FUZZ_OBJS) $(LDLIBS) -lpthread

build/fuzz/gen_rpc_seeds: fuzz/gen_rpc_seeds.c build/proto/rpc.pb-c.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< build/proto/rpc.pb-c.c $(LDLIBS)

clean:
	rm -rf build

.PHONY: all tests test clean fuzz
.SECONDARY: $(PROTO_C) $(PROTO_H) $(FUZZ_OBJS)
