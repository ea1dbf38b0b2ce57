/* Kernel and CRIU constants about tasks shared by dump and restore. */
#ifndef STASIS_TASK_STATE_H
#define STASIS_TASK_STATE_H

#include <stdint.h>

/* CoreEntry.tc.task_state values (CRIU's). */
#define TASK_ALIVE   0x1
#define TASK_DEAD    0x2
#define TASK_STOPPED 0x3

/* Kernel-internal syscall restart codes, seen in rax at a ptrace stop. */
#define ERESTARTSYS_ 512
#define ERESTARTNOINTR_ 513
#define ERESTARTNOHAND_ 514
#define ERESTART_RESTARTBLOCK_ 516

/* Signal handlers are saved for 1..64 but SIGKILL and SIGSTOP. */
#define SIGACT_NR 62

/* The kernel's struct sigaction for rt_sigaction on x86_64. */
struct kernel_sigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

#endif
