/* Build-ids of ELF files (buildid.h). The note is found through the
 * program headers: each PT_NOTE segment holds notes of a 12-byte header
 * (name size, descriptor size, type), the name and the descriptor, each
 * padded to 4 bytes; the build-id is the descriptor of type
 * NT_GNU_BUILD_ID named "GNU". Only little-endian files of this
 * machine's kind are read (the files a restored process maps). */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files/buildid.h"
#include "util/log.h"

#define ID_MAX 64		/* SHA-1's 20 bytes in practice */
#define NOTES_MAX (64u << 10)	/* a PT_NOTE segment read whole */
#define PHDRS_MAX 1024

static bool read_exact(int fd, void *buf, size_t len, uint64_t off)
{
	return pread(fd, buf, len, off) == (ssize_t)len;
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* The build-id among the notes buf[0..len), into id: its length, or 0. */
static size_t find_in_notes(const uint8_t *buf, size_t len, uint8_t *id)
{
	size_t at = 0;
	while (at + 12 <= len) {
		uint32_t h[3];
		memcpy(h, buf + at, sizeof(h));
		size_t name = at + 12, desc = name + pad4(h[0]), next = desc + pad4(h[1]);
		if (h[0] > len || h[1] > len || next > len || next <= at)
			return 0;
		if (h[2] == NT_GNU_BUILD_ID && h[0] == 4 && !memcmp(buf + name, "GNU", 4) && h[1] && h[1] <= ID_MAX) {
			memcpy(id, buf + desc, h[1]);
			return h[1];
		}
		at = next;
	}
	return 0;
}

/* One PT_NOTE segment at off, len bytes. */
static size_t find_in_segment(int fd, uint64_t off, uint64_t len, uint8_t *id)
{
	if (!len || len > NOTES_MAX)
		return 0;
	uint8_t *buf = malloc(len);
	size_t n = buf && read_exact(fd, buf, len, off) ? find_in_notes(buf, len, id) : 0;
	free(buf);
	return n;
}

/* The build-id of the ELF file at fd, into id (ID_MAX bytes): its
 * length, 0 if none. */
static size_t elf_build_id(int fd, uint8_t *id)
{
	Elf64_Ehdr eh;
	if (!read_exact(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB)
		return 0;
	bool is64 = eh.e_ident[EI_CLASS] == ELFCLASS64;
	if (!is64 && eh.e_ident[EI_CLASS] != ELFCLASS32)
		return 0;
	/* the 32-bit header's fields are at other offsets */
	Elf32_Ehdr eh32;
	memcpy(&eh32, &eh, sizeof(eh32));
	uint64_t phoff = is64 ? eh.e_phoff : eh32.e_phoff;
	unsigned phnum = is64 ? eh.e_phnum : eh32.e_phnum;
	unsigned phsize = is64 ? eh.e_phentsize : eh32.e_phentsize;
	if (phsize != (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) || phnum > PHDRS_MAX)
		return 0;
	for (unsigned i = 0; i < phnum; i++) {
		Elf64_Phdr ph;
		Elf32_Phdr ph32;
		uint64_t at = phoff + (uint64_t)i * phsize;
		if (is64 ? !read_exact(fd, &ph, sizeof(ph), at) : !read_exact(fd, &ph32, sizeof(ph32), at))
			return 0;
		uint32_t type = is64 ? ph.p_type : ph32.p_type;
		uint64_t off = is64 ? ph.p_offset : ph32.p_offset, len = is64 ? ph.p_filesz : ph32.p_filesz;
		size_t n = type == PT_NOTE ? find_in_segment(fd, off, len, id) : 0;
		if (n)
			return n;
	}
	return 0;
}

int buildid_save(RegFileEntry *r, int fd)
{
	uint8_t id[ID_MAX];
	size_t n = elf_build_id(fd, id);
	if (!n)
		return 0;
	size_t words = (n + 3) / 4;
	r->build_id = calloc(words, sizeof(uint32_t));
	if (!r->build_id) {
		pr_err("out of memory saving the build-id of %s", r->name);
		return -1;
	}
	memcpy(r->build_id, id, n);
	r->n_build_id = words;
	return 0;
}

int buildid_check(const RegFileEntry *r, int fd, const char *who)
{
	uint8_t id[ID_MAX];
	if (!r->n_build_id)
		return 0;
	size_t n = elf_build_id(fd, id);
	if (!n) {
		pr_info("%s: %s has no build-id to check now: checked by its size only", who, r->name);
		return 0;
	}
	if ((n + 3) / 4 != r->n_build_id || memcmp(id, r->build_id, n)) {
		pr_err("%s: %s has another build-id than at the dump: not the file the task had "
		       "(rebuilt since? --file-validation filesize checks sizes only)", who, r->name);
		return -1;
	}
	return 0;
}
