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

clean:
	rm -rf build

.PHONY: all tests test clean
.SECONDARY: $(PROTO_C) $(PROTO_H)
