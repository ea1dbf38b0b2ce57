/* x86_64 registers <-> CoreEntry thread_info (CRIU's layout of the xsave
 * area split into named fields). */
#ifndef STASIS_REGS_X86_H
#define STASIS_REGS_X86_H

#include <stdint.h>
#include <stddef.h>
#include <sys/user.h>
#include "core.pb-c.h"

#define XSAVE_BUF_MAX 16384

/* Fills ti (allocating its sub-messages) from regs and a standard-format
 * xsave buffer. Free with regs_free_thread_info(). */
int regs_to_image(ThreadInfoX86 *ti, const struct user_regs_struct *regs,
		  const uint8_t *xsave, size_t xsave_len);
void regs_free_thread_info(ThreadInfoX86 *ti);

/* The other way: regs from the image, xsave overlaid onto buf (which holds
 * the task's current xsave area of xsave_len bytes). Checks every count. */
int regs_from_image(const ThreadInfoX86 *ti, struct user_regs_struct *regs,
		    uint8_t *xsave, size_t xsave_len);

#endif
