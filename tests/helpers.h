/* SPDX-License-Identifier: MIT */
/*
 * Shared by the cmocka tests: hex vectors, a deterministic PRNG and the
 * pattern fill used to check that outputs stay untouched on error. Link
 * tests/helpers.c (which needs cmocka) into the test binary.
 */
#ifndef REHABLINK_TESTS_HELPERS_H
#define REHABLINK_TESTS_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* The byte written over outputs before a call that must not touch them. */
#define TEST_PATTERN 0xa5

/*
 * Parses "01 0a ff" (pairs of hex digits, whitespace between bytes
 * optional) into buf[size]; returns the byte count. Fails the running
 * test on an odd digit, a non-hex character or more than size bytes.
 */
size_t test_hex(const char *hex, uint8_t *buf, size_t size);

/* Fills p[n] with TEST_PATTERN; test_is_pattern says if it still is. */
void test_fill(void *p, size_t n);
bool test_is_pattern(const void *p, size_t n);

/* splitmix64: small, fast and the same sequence on every machine. */
struct test_rng {
	uint64_t state;
};
void test_rng_seed(struct test_rng *rng, uint64_t seed);
uint64_t test_rng_next(struct test_rng *rng);
/* Uniform in lo..hi inclusive (lo <= hi). */
uint32_t test_rng_range(struct test_rng *rng, uint32_t lo, uint32_t hi);
/* One of the edge values lo, lo+1, hi-1, hi half of the time, else any
 * value in lo..hi: boundaries are where codecs break. */
int64_t test_rng_edge(struct test_rng *rng, int64_t lo, int64_t hi);

#endif
