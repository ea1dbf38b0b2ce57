# Stasis build. `make` builds build/stasis; `make test` builds and runs the suite.
CC      ?= gcc
CFLAGS  ?= -O2 -g
CFLAGS  += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
           -std=gnu11 -D_GNU_SOURCE -Isrc -Ibuild/proto
LDLIBS  += -lprotobuf-c -lnftables

VERSION := 0.1.0
PROTOS  := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,build/proto/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)
SRCS    := $(wildcard src/*/*.c)
OBJS    := $(patsubst src/%.c,build/obj/%.o,$(SRCS)) $(PROTO_C:.c=.o)

all: build/stasis lib

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

# libstasis: libcriu's API (include/criu/criu.h) over the RPC protocol.
# Position-independent objects of its own, the generated protobuf code
# hidden inside it; only the criu_* API is exported.
LIB_SRCS   := $(wildcard lib/*.c)
LIB_OBJS   := $(patsubst lib/%.c,build/lib/obj/%.o,$(LIB_SRCS)) build/lib/obj/rpc.pb-c.o
LIB_SONAME := libstasis.so.1
LIB_CFLAGS := $(CFLAGS) -fPIC -D_GNU_SOURCE -Iinclude -Ilib -Ibuild/proto

lib: build/lib/$(LIB_SONAME) build/lib/libstasis.so build/lib/libstasis.a \
     build/lib/pkgconfig/libstasis.pc

build/lib/obj/%.o: lib/%.c lib/internal.h include/criu/criu.h build/proto/rpc.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c -o $@ $<

build/lib/obj/rpc.pb-c.o: build/proto/rpc.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -fvisibility=hidden -c -o $@ $<

build/lib/$(LIB_SONAME): $(LIB_OBJS)
	$(CC) $(LIB_CFLAGS) -shared -Wl,-soname,$(LIB_SONAME) -o $@ $^ -lprotobuf-c

build/lib/libstasis.so: build/lib/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $@

build/lib/libstasis.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

# pc_file PREFIX LIBDIR INCLUDEDIR: a pkg-config file for those places.
define pc_file
prefix=$(1)
libdir=$(2)
includedir=$(3)

Name: libstasis
Description: Stasis checkpoint/restore client library (libcriu API)
Version: $(VERSION)
Requires.private: libprotobuf-c
Libs: -L$${libdir} -lstasis
Cflags: -I$${includedir}
endef
export BUILD_PC := $(call pc_file,$(CURDIR)/build,$(CURDIR)/build/lib,$(CURDIR)/include)

# In the build tree: PKG_CONFIG_PATH=build/lib/pkgconfig finds it.
build/lib/pkgconfig/libstasis.pc: Makefile
	@mkdir -p $(dir $@)
	printf '%s\n' "$$BUILD_PC" > $@

# make install [PREFIX=/usr/local] [LIBDIR=PREFIX/lib] [DESTDIR=]: the
# binary in sbin (as CRIU's /usr/sbin/criu), libstasis with its headers
# and .pc file, and the manual page stasis(8).
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
INCDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
export INSTALL_PC := $(call pc_file,$(PREFIX),$(LIBDIR),$(INCDIR))

install: build/stasis lib
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)/criu
	install -m 755 build/stasis $(DESTDIR)$(SBINDIR)/stasis
	install -m 644 doc/stasis.8 $(DESTDIR)$(MANDIR)/man8/stasis.8
	install -m 755 build/lib/$(LIB_SONAME) $(DESTDIR)$(LIBDIR)/
	ln -sf $(LIB_SONAME) $(DESTDIR)$(LIBDIR)/libstasis.so
	install -m 644 build/lib/libstasis.a $(DESTDIR)$(LIBDIR)/
	install -m 644 include/criu/criu.h $(DESTDIR)$(INCDIR)/criu/
	install -m 644 include/stasis.h $(DESTDIR)$(INCDIR)/
	printf '%s\n' "$$INSTALL_PC" > $(DESTDIR)$(LIBDIR)/pkgconfig/libstasis.pc

# Removes what install put there (and the criu include directory if empty).
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/stasis $(DESTDIR)$(MANDIR)/man8/stasis.8
	rm -f $(DESTDIR)$(LIBDIR)/$(LIB_SONAME) $(DESTDIR)$(LIBDIR)/libstasis.so
	rm -f $(DESTDIR)$(LIBDIR)/libstasis.a $(DESTDIR)$(LIBDIR)/pkgconfig/libstasis.pc
	rm -f $(DESTDIR)$(INCDIR)/criu/criu.h $(DESTDIR)$(INCDIR)/stasis.h
	-rmdir $(DESTDIR)$(INCDIR)/criu 2>/dev/null

tests: build/stasis lib
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

.PHONY: all lib install uninstall tests test clean fuzz
.SECONDARY: $(PROTO_C) $(PROTO_H) $(FUZZ_OBJS)
