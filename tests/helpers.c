// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t test_hex(const char *hex, uint8_t *buf, size_t size)
{
	size_t n = 0;
	const char *p = hex;

	if (!hex)
		fail_msg("test_hex: NULL string");
	while (*p) {
		int hi, lo;

		if (is_space(*p)) {
			p++;
			continue;
		}
		hi = hex_digit(p[0]);
		lo = hi < 0 ? -1 : hex_digit(p[1]);
		if (hi < 0 || lo < 0)
			fail_msg("test_hex: bad hex at offset %zu of \"%s\"",
				 (size_t) (p - hex), hex);
		if (n >= size)
			fail_msg("test_hex: \"%s\" is longer than %zu bytes",
				 hex, size);
		buf[n++] = (uint8_t) (hi << 4 | lo);
		p += 2;
	}
	return n;
}

void test_fill(void *p, size_t n)
{
	memset(p, TEST_PATTERN, n);
}

bool test_is_pattern(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != TEST_PATTERN)
			return false;
	return true;
}

void test_rng_seed(struct test_rng *rng, uint64_t seed)
{
	rng->state = seed;
}

uint64_t test_rng_next(struct test_rng *rng)
{
	uint64_t z = (rng->state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

uint32_t test_rng_range(struct test_rng *rng, uint32_t lo, uint32_t hi)
{
	uint64_t span = (uint64_t) hi - lo + 1;

	return lo + (uint32_t) (test_rng_next(rng) % span);
}

int64_t test_rng_edge(struct test_rng *rng, int64_t lo, int64_t hi)
{
	uint64_t r = test_rng_next(rng);
	uint64_t span = (uint64_t) (hi - lo) + 1;
	int64_t v;

	switch (r & 7) {
	case 0:
		v = lo;
		break;
	case 1:
		v = lo + 1;
		break;
	case 2:
		v = hi - 1;
		break;
	case 3:
		v = hi;
		break;
	default:
		return lo + (int64_t) ((r >> 3) % span);
	}
	/* lo+1 or hi-1 may leave a range of one value */
	return v < lo ? lo : v > hi ? hi : v;
}
