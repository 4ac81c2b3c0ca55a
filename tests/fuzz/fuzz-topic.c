// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: rl_topic_parse() (docs/protocol.md 2.1).
 *
 * Invariants: a documented errno with a reason and an offset inside the
 * input, or a kind whose ids are valid; on success building the topic from
 * the parsed kind and ids gives back exactly the input bytes.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iproto \
 *     tests/fuzz/fuzz-topic.c proto/topic.c -o fuzz-topic
 *   ./fuzz-topic tests/fuzz/corpus/topic
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rl_topic t;
	struct rl_topic_err err = { 0 };
	struct rl_topic_ids ids;
	char buf[RL_TOPIC_BUF_SIZE];
	ssize_t n;
	int rc;

	rc = rl_topic_parse((const char *) data, size, &t, &err);
	if (rc < 0) {
		check(rc == -EINVAL || rc == -EPROTONOSUPPORT ||
		      rc == -EOPNOTSUPP);
		check(err.reason != NULL);
		check(err.offset <= size);
		return 0;
	}
	check(rc == 0);
	check(rl_topic_kind_name(t.kind) != NULL);
	check(rl_topic_id_validate(t.gateway) == 0);
	ids.gateway = t.gateway;
	ids.patient = t.patient;
	ids.wearable = t.wearable;
	n = rl_topic_build(t.kind, &ids, buf, sizeof(buf));
	check(n >= 0 && (size_t) n == size && memcmp(buf, data, size) == 0);
	return 0;
}
