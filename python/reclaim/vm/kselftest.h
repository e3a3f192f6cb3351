/* SPDX-License-Identifier: MIT */
/*
 * The subset of the kernel's tools/testing/selftests/kselftest.h API that reclaim's exported
 * cross-check programs use (reclaim.crosscheck.ctest), with the same names, exit codes and
 * TAP 13 output, for machines without a kernel tree. Built in tools/testing/selftests/mm, the
 * kernel's own header serves instead: include "../kselftest.h" there.
 *
 *   ksft_print_header(); ksft_set_plan(n);
 *   ksft_test_result_pass / _fail / _skip / _xfail("name\n"), ksft_print_msg("# ...")
 *   ksft_finished();   exit KSFT_PASS if every test passed, was skipped or failed as
 *                      expected, else KSFT_FAIL; ksft_exit_skip("why\n") skips the program
 */
#ifndef RECLAIM_KSELFTEST_H
#define RECLAIM_KSELFTEST_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_XFAIL 2
#define KSFT_XPASS 3
#define KSFT_SKIP 4

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#define KSFT_PRINTF(a, b) __attribute__((format(printf, a, b)))

static unsigned int ksft_plan;
static unsigned int ksft_n_pass, ksft_n_fail, ksft_n_xfail, ksft_n_skip;

static inline unsigned int ksft_test_num(void)
{
	return ksft_n_pass + ksft_n_fail + ksft_n_xfail + ksft_n_skip;
}

static inline void ksft_print_header(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0); /* no output twice after a fork */
	if (!getenv("KSFT_TAP_LEVEL"))
		printf("TAP version 13\n");
}

static inline void ksft_set_plan(unsigned int plan)
{
	ksft_plan = plan;
	printf("1..%u\n", plan);
}

static inline void ksft_vline(const char *prefix, const char *fmt, va_list ap)
{
	int saved = errno;
	fputs(prefix, stdout);
	errno = saved;
	vprintf(fmt, ap);
}

static inline KSFT_PRINTF(1, 2) void ksft_print_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ksft_vline("# ", fmt, ap);
	va_end(ap);
}

static inline void ksft_perror(const char *what)
{
	ksft_print_msg("%s: %s (%d)\n", what, strerror(errno), errno);
}

#define KSFT_RESULT(counter, head)                      \
	do {                                            \
		char p_[64];                            \
		va_list ap;                             \
		counter++;                              \
		snprintf(p_, sizeof(p_), head, ksft_test_num()); \
		va_start(ap, fmt);                      \
		ksft_vline(p_, fmt, ap);                \
		va_end(ap);                             \
	} while (0)

static inline KSFT_PRINTF(1, 2) void ksft_test_result_pass(const char *fmt, ...)
{
	KSFT_RESULT(ksft_n_pass, "ok %u ");
}

static inline KSFT_PRINTF(1, 2) void ksft_test_result_fail(const char *fmt, ...)
{
	KSFT_RESULT(ksft_n_fail, "not ok %u ");
}

static inline KSFT_PRINTF(1, 2) void ksft_test_result_xfail(const char *fmt, ...)
{
	KSFT_RESULT(ksft_n_xfail, "ok %u # XFAIL ");
}

static inline KSFT_PRINTF(1, 2) void ksft_test_result_skip(const char *fmt, ...)
{
	KSFT_RESULT(ksft_n_skip, "ok %u # SKIP ");
}

static inline void ksft_print_cnts(void)
{
	if (ksft_plan != ksft_test_num())
		printf("# Planned tests != run tests (%u != %u)\n", ksft_plan, ksft_test_num());
	printf("# Totals: pass:%u fail:%u xfail:%u xpass:0 skip:%u error:0\n", ksft_n_pass,
	       ksft_n_fail, ksft_n_xfail, ksft_n_skip);
}

static inline void ksft_exit_pass(void)
{
	ksft_print_cnts();
	exit(KSFT_PASS);
}

static inline void ksft_exit_fail(void)
{
	ksft_print_cnts();
	exit(KSFT_FAIL);
}

#define ksft_exit(ok) ((ok) ? ksft_exit_pass() : ksft_exit_fail())
#define ksft_finished() ksft_exit(ksft_plan == ksft_n_pass + ksft_n_xfail + ksft_n_skip)

static inline KSFT_PRINTF(1, 2) void ksft_exit_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (ksft_plan || ksft_test_num()) {
		ksft_n_skip++;
		printf("ok %u # SKIP ", ksft_test_num());
	} else {
		printf("1..0 # SKIP ");
	}
	vprintf(fmt, ap);
	va_end(ap);
	exit(KSFT_SKIP);
}

static inline KSFT_PRINTF(1, 2) void ksft_exit_fail_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ksft_vline("Bail out! ", fmt, ap);
	va_end(ap);
	ksft_print_cnts();
	exit(KSFT_FAIL);
}

#endif /* RECLAIM_KSELFTEST_H */
