#include <cpuid.h>
#include <stdlib.h>
#include <string.h>

#include "image/regs_x86.h"
#include "util/log.h"

/* xsave components stored beyond the legacy region, by CPUID leaf 0xD
 * feature number, with the image field that holds each. */
enum { XF_YMM = 2, XF_BNDREGS = 3, XF_BNDCSR = 4, XF_OPMASK = 5, XF_ZMM_H = 6,
       XF_HI16_ZMM = 7, XF_PKRU = 9 };

#define XSAVE_HDR_OFF 512

/* Standard-format offset and size of xsave component nr (0 if absent). */
static void xfeature_place(int nr, uint32_t *off, uint32_t *size)
{
	unsigned a, b, c, d;
	*off = *size = 0;
	if (!__get_cpuid_count(0xd, nr, &a, &b, &c, &d))
		return;
	*size = a;
	*off = b;
}

/* Copies component nr between buf and an image array of n elements of
 * elsize bytes. to_img picks the direction. Returns the element count the
 * image should hold (0 if the CPU lacks the component). */
static size_t xfeature_copy(int nr, uint8_t *buf, size_t buf_len, void *arr, size_t n,
			    size_t elsize, int to_img)
{
	uint32_t off, size;
	xfeature_place(nr, &off, &size);
	if (!size || off + size > buf_len)
		return 0;
	size_t bytes = n * elsize < size ? n * elsize : size;
	if (to_img)
		memcpy(arr, buf + off, bytes);
	else
		memcpy(buf + off, arr, bytes);
	return bytes / elsize;
}

#define COPY_OUT(field, nr, count, type) do {				\
	x->field = calloc(count, sizeof(type));				\
	if (!x->field)							\
		return -1;						\
	x->n_##field = xfeature_copy(nr, (uint8_t *)xsave, xsave_len,	\
				     x->field, count, sizeof(type), 1);	\
} while (0)

static int xsave_to_image(UserX86XsaveEntry *x, const uint8_t *xsave, size_t xsave_len)
{
	memcpy(&x->xstate_bv, xsave + XSAVE_HDR_OFF, 8);
	COPY_OUT(ymmh_space, XF_YMM, 64, uint32_t);
	COPY_OUT(bndreg_state, XF_BNDREGS, 8, uint64_t);
	COPY_OUT(bndcsr_state, XF_BNDCSR, 2, uint64_t);
	COPY_OUT(opmask_reg, XF_OPMASK, 8, uint64_t);
	COPY_OUT(zmm_upper, XF_ZMM_H, 64, uint64_t);
	COPY_OUT(hi16_zmm, XF_HI16_ZMM, 128, uint64_t);
	COPY_OUT(pkru, XF_PKRU, 1, uint32_t);
	return 0;
}

static int fpregs_to_image(UserX86FpregsEntry *f, const uint8_t *xsave, size_t xsave_len)
{
	struct user_fpregs_struct fx;
	memcpy(&fx, xsave, sizeof(fx));
	f->cwd = fx.cwd;
	f->swd = fx.swd;
	f->twd = fx.ftw;
	f->fop = fx.fop;
	f->rip = fx.rip;
	f->rdp = fx.rdp;
	f->mxcsr = fx.mxcsr;
	f->mxcsr_mask = fx.mxcr_mask;
	f->n_st_space = 32;
	f->n_xmm_space = 64;
	f->n_padding = 24;
	f->st_space = malloc(32 * 4);
	f->xmm_space = malloc(64 * 4);
	f->padding = malloc(24 * 4);
	if (!f->st_space || !f->xmm_space || !f->padding)
		return -1;
	memcpy(f->st_space, fx.st_space, 32 * 4);
	memcpy(f->xmm_space, fx.xmm_space, 64 * 4);
	memcpy(f->padding, fx.padding, 24 * 4);
	f->xsave = calloc(1, sizeof(*f->xsave));
	if (!f->xsave)
		return -1;
	user_x86_xsave_entry__init(f->xsave);
	return xsave_to_image(f->xsave, xsave, xsave_len);
}

static void gpregs_to_image(UserX86RegsEntry *g, const struct user_regs_struct *r)
{
	g->r15 = r->r15; g->r14 = r->r14; g->r13 = r->r13; g->r12 = r->r12;
	g->bp = r->rbp; g->bx = r->rbx; g->r11 = r->r11; g->r10 = r->r10;
	g->r9 = r->r9; g->r8 = r->r8; g->ax = r->rax; g->cx = r->rcx;
	g->dx = r->rdx; g->si = r->rsi; g->di = r->rdi; g->orig_ax = r->orig_rax;
	g->ip = r->rip; g->cs = r->cs; g->flags = r->eflags; g->sp = r->rsp;
	g->ss = r->ss; g->fs_base = r->fs_base; g->gs_base = r->gs_base;
	g->ds = r->ds; g->es = r->es; g->fs = r->fs; g->gs = r->gs;
	g->has_mode = 1;
	g->mode = 1;	/* native */
}

int regs_to_image(ThreadInfoX86 *ti, const struct user_regs_struct *regs,
		  const uint8_t *xsave, size_t xsave_len)
{
	thread_info_x86__init(ti);
	ti->gpregs = calloc(1, sizeof(*ti->gpregs));
	ti->fpregs = calloc(1, sizeof(*ti->fpregs));
	if (!ti->gpregs || !ti->fpregs)
		goto nomem;
	user_x86_regs_entry__init(ti->gpregs);
	user_x86_fpregs_entry__init(ti->fpregs);
	gpregs_to_image(ti->gpregs, regs);
	if (xsave_len < XSAVE_HDR_OFF + 64) {
		pr_err("xsave area of %zu bytes is too small", xsave_len);
		return -1;
	}
	if (fpregs_to_image(ti->fpregs, xsave, xsave_len) < 0)
		goto nomem;
	return 0;
nomem:
	pr_err("out of memory saving registers");
	return -1;
}

void regs_free_thread_info(ThreadInfoX86 *ti)
{
	if (ti->fpregs) {
		UserX86FpregsEntry *f = ti->fpregs;
		free(f->st_space);
		free(f->xmm_space);
		free(f->padding);
		if (f->xsave) {
			UserX86XsaveEntry *x = f->xsave;
			free(x->ymmh_space); free(x->bndreg_state); free(x->bndcsr_state);
			free(x->opmask_reg); free(x->zmm_upper); free(x->hi16_zmm); free(x->pkru);
			free(x);
		}
		free(f);
	}
	free(ti->gpregs);
	ti->gpregs = NULL;
	ti->fpregs = NULL;
}

static void gpregs_from_image(struct user_regs_struct *r, const UserX86RegsEntry *g)
{
	r->r15 = g->r15; r->r14 = g->r14; r->r13 = g->r13; r->r12 = g->r12;
	r->rbp = g->bp; r->rbx = g->bx; r->r11 = g->r11; r->r10 = g->r10;
	r->r9 = g->r9; r->r8 = g->r8; r->rax = g->ax; r->rcx = g->cx;
	r->rdx = g->dx; r->rsi = g->si; r->rdi = g->di; r->orig_rax = g->orig_ax;
	r->rip = g->ip; r->cs = g->cs; r->eflags = g->flags; r->rsp = g->sp;
	r->ss = g->ss; r->fs_base = g->fs_base; r->gs_base = g->gs_base;
	r->ds = g->ds; r->es = g->es; r->fs = g->fs; r->gs = g->gs;
}

#define COPY_IN(field, nr, count, type) do {				\
	if (x->n_##field > (count)) {					\
		pr_err("image xsave field " #field " has %zu elements (max %d)", \
		       x->n_##field, count);				\
		return -1;						\
	}								\
	if (x->n_##field)						\
		xfeature_copy(nr, xsave, xsave_len, x->field,		\
			      x->n_##field, sizeof(type), 0);		\
} while (0)

int regs_from_image(const ThreadInfoX86 *ti, struct user_regs_struct *regs,
		    uint8_t *xsave, size_t xsave_len)
{
	const UserX86FpregsEntry *f = ti->fpregs;
	struct user_fpregs_struct fx;

	/* padding is the kernel's own bytes, which we don't use (CRIU
	 * doesn't save them at all) */
	if (!ti->gpregs || !f || f->n_st_space != 32 || f->n_xmm_space != 64) {
		pr_err("image registers are incomplete (fpu state has wrong sizes)");
		return -1;
	}
	if (ti->gpregs->has_mode && ti->gpregs->mode != 1) {
		pr_err("image holds a 32-bit (compat) task, not supported");
		return -1;
	}
	gpregs_from_image(regs, ti->gpregs);
	memcpy(&fx, xsave, sizeof(fx));
	fx.cwd = f->cwd; fx.swd = f->swd; fx.ftw = f->twd; fx.fop = f->fop;
	fx.rip = f->rip; fx.rdp = f->rdp; fx.mxcsr = f->mxcsr; fx.mxcr_mask = f->mxcsr_mask;
	memcpy(fx.st_space, f->st_space, sizeof(fx.st_space));
	memcpy(fx.xmm_space, f->xmm_space, sizeof(fx.xmm_space));
	/* padding holds the kernel's own software bytes: keep the live ones */
	memcpy(xsave, &fx, sizeof(fx));
	const UserX86XsaveEntry *x = f->xsave;
	if (!x)
		return 0;
	/* Only components this CPU saves may be marked present. */
	uint64_t live_bv;
	memcpy(&live_bv, xsave + XSAVE_HDR_OFF, 8);
	unsigned a = 0, b = 0, c = 0, d = 0;
	__get_cpuid_count(0xd, 0, &a, &b, &c, &d);
	uint64_t supported = a | ((uint64_t)d << 32);
	if (x->xstate_bv & ~supported) {
		pr_err("image xsave state uses features %#lx this CPU lacks",
		       (unsigned long)(x->xstate_bv & ~supported));
		return -1;
	}
	memcpy(xsave + XSAVE_HDR_OFF, &x->xstate_bv, 8);
	COPY_IN(ymmh_space, XF_YMM, 64, uint32_t);
	COPY_IN(bndreg_state, XF_BNDREGS, 8, uint64_t);
	COPY_IN(bndcsr_state, XF_BNDCSR, 2, uint64_t);
	COPY_IN(opmask_reg, XF_OPMASK, 8, uint64_t);
	COPY_IN(zmm_upper, XF_ZMM_H, 64, uint64_t);
	COPY_IN(hi16_zmm, XF_HI16_ZMM, 128, uint64_t);
	COPY_IN(pkru, XF_PKRU, 1, uint32_t);
	return 0;
}
