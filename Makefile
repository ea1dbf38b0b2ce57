# Stasis build. `make` builds build/stasis; `make test` builds and runs the suite.
CC      ?= gcc
CFLAGS  ?= -O2 -g
CFLAGS  += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
           -std=gnu11 -D_GNU_SOURCE -Isrc -Ibuild/proto
CPPFLAGS ?=
LDFLAGS ?=
LDLIBS  += -lprotobuf-c -lxxhash
# GnuTLS and libnftables are loaded only when used (src/util/dynlib.h):
# their headers are build dependencies, the libraries found by the soname
# of the development link (a fallback if objdump can't tell).
soname = $(shell objdump -p "$$($(CC) -print-file-name=$(1).so)" 2>/dev/null | awk '$$1 == "SONAME" { print $$2 }')
GNUTLS_SONAME   := $(or $(call soname,libgnutls),libgnutls.so.30)
NFTABLES_SONAME := $(or $(call soname,libnftables),libnftables.so.1)
build/obj/pagexfer/tls_lib.o: CPPFLAGS += -DSTASIS_GNUTLS_SONAME='"$(GNUTLS_SONAME)"'
build/obj/net/nft_lib.o: CPPFLAGS += -DSTASIS_NFTABLES_SONAME='"$(NFTABLES_SONAME)"'

# The release (the file VERSION) and the commit built from: `git describe`
# of this tree (not of a repository around it, as when the sources of a
# .deb are unpacked inside another checkout), else the release's tag.
VERSION := $(shell cat VERSION)
GITID   ?= $(shell [ "$$(git -C '$(CURDIR)' rev-parse --show-toplevel 2>/dev/null)" = '$(CURDIR)' ] && \
		git -C '$(CURDIR)' describe --always --dirty --abbrev=12 2>/dev/null)
ifeq ($(GITID),)
GITID   := v$(VERSION)
endif
PROTOS  := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,build/proto/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)
SRCS    := $(wildcard src/*/*.c)
OBJS    := $(patsubst src/%.c,build/obj/%.o,$(SRCS)) $(PROTO_C:.c=.o)

all: build/stasis lib

build/stasis: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# `stasis --version` names the commit: rewritten only when it changes, so
# that a build of the same commit builds nothing again.
build/gitid.h: FORCE
	@mkdir -p build
	@printf '#define STASIS_GITID "%s"\n' '$(GITID)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

build/obj/cli/main.o: build/gitid.h

build/proto/%.pb-c.c build/proto/%.pb-c.h: proto/%.proto
	@mkdir -p build/proto
	protoc-c --proto_path=proto --c_out=build/proto $<

build/proto/%.pb-c.o: build/proto/%.pb-c.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

build/obj/%.o: src/%.c $(PROTO_H) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Ibuild -DSTASIS_VERSION='"$(VERSION)"' -c -o $@ $<

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
	$(CC) $(CPPFLAGS) $(LIB_CFLAGS) -c -o $@ $<

build/lib/obj/rpc.pb-c.o: build/proto/rpc.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(LIB_CFLAGS) -fvisibility=hidden -c -o $@ $<

build/lib/$(LIB_SONAME): $(LIB_OBJS)
	$(CC) $(LIB_CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(LIB_SONAME) -o $@ $^ -lprotobuf-c

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

# libstasis again under libcriu's soname (CRIU's lib/Makefile:
# libcriu.so.$(CRIU_SO_VERSION_MAJOR), 2), for programs linked with or
# loading libcriu (crun dlopens libcriu.so.2): the same objects.
COMPAT_SONAME := libcriu.so.2

build/lib/$(COMPAT_SONAME): $(LIB_OBJS)
	$(CC) $(LIB_CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(COMPAT_SONAME) -o $@ $^ -lprotobuf-c

# criu.pc, for a build that looks for libcriu with pkg-config (crun's
# configure wants criu > 3.16.1 for checkpoint support): the CRIU release
# stasis answers VERSION as, libstasis's header, libcriu.so.2 of the build
# tree. PKG_CONFIG_PATH=build/lib/criu-compat (README, "Containers").
build/lib/criu-compat/criu.pc: build/lib/$(COMPAT_SONAME) Makefile
	@mkdir -p $(dir $@)
	printf '%s\n' 'Name: criu' 'Description: libcriu API of libstasis (stasis $(VERSION))' \
		'Version: 4.2.0' 'Libs: $(CURDIR)/build/lib/$(COMPAT_SONAME)' 'Cflags: -I$(CURDIR)/include' > $@

# The systemd units: stasis.socket as it is, stasis.service naming the
# installed binary.
build/systemd/stasis.socket: systemd/stasis.socket
	@mkdir -p $(dir $@)
	cp $< $@

# (made again whenever SBINDIR differs from the last make's)
build/systemd/stasis.service: systemd/stasis.service.in FORCE
	@mkdir -p $(dir $@)
	@sed 's|@SBINDIR@|$(SBINDIR)|g' $< > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

units: build/systemd/stasis.socket build/systemd/stasis.service

# make install [PREFIX=/usr/local] [LIBDIR=PREFIX/lib] [DESTDIR=]: the
# binary in sbin (as CRIU's /usr/sbin/criu), libstasis with its headers
# and .pc file, the manual page stasis(8) and the systemd units
# (SYSTEMDUNITDIR: PREFIX/lib/systemd/system, which systemd reads for
# /usr/local too). `make uninstall` removes exactly these files.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
export INSTALL_PC := $(call pc_file,$(PREFIX),$(LIBDIR),$(INCDIR))

INSTALLED := $(SBINDIR)/stasis $(MANDIR)/man8/stasis.8 \
	$(LIBDIR)/$(LIB_SONAME) $(LIBDIR)/libstasis.so $(LIBDIR)/libstasis.a \
	$(LIBDIR)/pkgconfig/libstasis.pc $(INCDIR)/criu/criu.h $(INCDIR)/stasis.h \
	$(SYSTEMDUNITDIR)/stasis.socket $(SYSTEMDUNITDIR)/stasis.service

install: build/stasis lib units
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMDUNITDIR)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)/criu
	install -m 755 build/stasis $(DESTDIR)$(SBINDIR)/stasis
	install -m 644 doc/stasis.8 $(DESTDIR)$(MANDIR)/man8/stasis.8
	install -m 644 build/lib/$(LIB_SONAME) $(DESTDIR)$(LIBDIR)/
	ln -sf $(LIB_SONAME) $(DESTDIR)$(LIBDIR)/libstasis.so
	install -m 644 build/lib/libstasis.a $(DESTDIR)$(LIBDIR)/
	install -m 644 include/criu/criu.h $(DESTDIR)$(INCDIR)/criu/
	install -m 644 include/stasis.h $(DESTDIR)$(INCDIR)/
	printf '%s\n' "$$INSTALL_PC" > $(DESTDIR)$(LIBDIR)/pkgconfig/libstasis.pc
	install -m 644 build/systemd/stasis.socket build/systemd/stasis.service $(DESTDIR)$(SYSTEMDUNITDIR)/

# Removes what install put there (and the criu include directory if empty:
# install made it, unless libcriu's headers are there too), and the
# compatibility names if they are ours.
uninstall: uninstall-criu-compat
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(INCDIR)/criu 2>/dev/null

# make install-criu-compat: for what looks for CRIU by name, `criu` in
# sbin and `crit` in bin (stasis runs as crit under that name), their
# manual pages, and libstasis as libcriu.so.2. Only when asked: these
# names are CRIU's, and would hide or replace an installed CRIU.
# `make uninstall-criu-compat` removes them (stasis itself stays).
COMPAT_INSTALLED := $(SBINDIR)/criu $(BINDIR)/crit $(MANDIR)/man8/criu.8 \
	$(MANDIR)/man1/crit.1 $(LIBDIR)/$(COMPAT_SONAME)
relpath = $(shell realpath -m --relative-to='$(dir $(1))' '$(2)')

install-criu-compat: install build/lib/$(COMPAT_SONAME)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	ln -sf stasis $(DESTDIR)$(SBINDIR)/criu
	ln -sf $(call relpath,$(BINDIR)/crit,$(SBINDIR)/stasis) $(DESTDIR)$(BINDIR)/crit
	ln -sf stasis.8 $(DESTDIR)$(MANDIR)/man8/criu.8
	ln -sf ../man8/stasis.8 $(DESTDIR)$(MANDIR)/man1/crit.1
	install -m 644 build/lib/$(COMPAT_SONAME) $(DESTDIR)$(LIBDIR)/

# Only what is ours: a link to stasis, a libcriu.so.2 that is libstasis
# (a real CRIU installed there since stays).
uninstall-criu-compat:
	@for f in $(addprefix $(DESTDIR),$(COMPAT_INSTALLED)); do \
		case $$(readlink "$$f") in \
		*stasis|*stasis.8) rm -f "$$f" && echo "rm $$f" ;; \
		"") if [ -f "$$f" ] && grep -q 'libstasis: ' "$$f"; then rm -f "$$f" && echo "rm $$f"; fi ;; \
		esac; \
	done

# the compat soname too: the crun tests load it as crun's libcriu.so.2
tests: build/stasis lib build/lib/$(COMPAT_SONAME)
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

.PHONY: all lib units install uninstall install-criu-compat uninstall-criu-compat tests test clean fuzz FORCE
.SECONDARY: $(PROTO_C) $(PROTO_H) $(FUZZ_OBJS)
