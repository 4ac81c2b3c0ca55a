/* SPDX-License-Identifier: MIT */
/*
 * Waiting on the thread-default main context in tests and benchmarks:
 * WAIT_FOR_MS(cond, ms) iterates the context until cond holds, and fails
 * with the line and the condition after ms; pump_ms(ms) iterates it for
 * ms whatever happens (to see that nothing does). The includer may define
 * LOOP_WAIT_FAIL(fmt, ...) (default: cmocka's fail_msg) and WAIT_MS (the
 * budget of WAIT_FOR).
 */
#ifndef REHABLINK_TESTS_LOOP_WAIT_H
#define REHABLINK_TESTS_LOOP_WAIT_H

#include <glib.h>

#ifndef LOOP_WAIT_FAIL
#define LOOP_WAIT_FAIL fail_msg
#endif

#define WAIT_FOR_MS(cond, ms)							\
	do {									\
		gint64 deadline_ = g_get_monotonic_time() + (gint64)(ms) * 1000; \
		while (!(cond)) {						\
			if (g_get_monotonic_time() > deadline_)			\
				LOOP_WAIT_FAIL("line %d: timed out waiting for %s", \
					       __LINE__, #cond);		\
			g_main_context_iteration(NULL, TRUE);			\
		}								\
	} while (0)
#define WAIT_FOR(cond) WAIT_FOR_MS(cond, WAIT_MS)

static inline void pump_ms(unsigned int ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

	while (g_get_monotonic_time() < end)
		g_main_context_iteration(NULL, TRUE);
}

#endif
