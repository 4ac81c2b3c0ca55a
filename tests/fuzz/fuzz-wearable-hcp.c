// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: history control point request and response codecs.
 *
 * Invariants (abort() on violation): each decoder succeeds or returns a
 * documented errno with its output untouched and struct wb_err filled; on
 * success the value re-encodes to the same bytes, decodes equal, and every
 * shorter buffer gives -ENOBUFS.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "wearable.h"

#define PATTERN 0xa5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool is_pattern(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != PATTERN)
			return false;
	return true;
}

/* The combinations of docs/protocol.md 1.9, written out independently. */
static bool valid_request(const struct wb_hcp_request *r, size_t size)
{
	bool all = r->filter == WB_HCP_ALL && r->seq == 0 && size == 2;
	bool after = r->filter == WB_HCP_AFTER_SEQ && size == 6;
	bool up_to = r->filter == WB_HCP_UP_TO_SEQ && size == 6;

	if (r->opcode == WB_HCP_REPORT_COUNT ||
	    r->opcode == WB_HCP_REPORT_RECORDS)
		return all || after;
	if (r->opcode == WB_HCP_DELETE_RECORDS)
		return up_to;
	if (r->opcode == WB_HCP_ABORT)
		return all;
	return false;
}

static bool valid_response(const struct wb_hcp_response *r, size_t size)
{
	if (r->opcode == WB_HCP_COUNT_RESPONSE)
		return size == 5 && r->request == 0 && r->code == 0 &&
		       r->last_seq == 0;
	return r->opcode == WB_HCP_RESPONSE_CODE && size == 11 &&
	       r->request >= WB_HCP_REPORT_COUNT &&
	       r->request <= WB_HCP_ABORT && r->code >= WB_HCP_SUCCESS &&
	       r->code <= WB_HCP_STORAGE_ERROR;
}

static void check_request(const uint8_t *data, size_t size)
{
	struct wb_hcp_request req, back;
	struct wb_err err;
	uint8_t buf[16];
	ssize_t n;
	int rc;

	memset(&req, PATTERN, sizeof(req));
	memset(&err, PATTERN, sizeof(err));
	rc = wb_hcp_request_decode(data, size, &req, &err);
	if (rc < 0) {
		check(rc == -EMSGSIZE || rc == -EBADMSG || rc == -EOPNOTSUPP ||
		      rc == -EINVAL);
		check(is_pattern(&req, sizeof(req)));
		check(err.field != NULL && err.offset <= size &&
		      err.record == -1);
		return;
	}
	check(rc == 0 && is_pattern(&err, sizeof(err)));
	check(valid_request(&req, size));
	n = wb_hcp_request_encode(&req, buf, sizeof(buf));
	check(n == (ssize_t) size && memcmp(buf, data, size) == 0);
	for (size_t len = 0; len < size; len++)
		check(wb_hcp_request_encode(&req, buf, len) == -ENOBUFS);
	check(wb_hcp_request_decode(data, size, &back, NULL) == 0);
	check(back.opcode == req.opcode && back.filter == req.filter &&
	      back.seq == req.seq);
}

static void check_response(const uint8_t *data, size_t size)
{
	struct wb_hcp_response rsp, back;
	struct wb_err err;
	uint8_t buf[16];
	ssize_t n;
	int rc;

	memset(&rsp, PATTERN, sizeof(rsp));
	memset(&err, PATTERN, sizeof(err));
	rc = wb_hcp_response_decode(data, size, &rsp, &err);
	if (rc < 0) {
		check(rc == -EMSGSIZE || rc == -EBADMSG || rc == -EOPNOTSUPP ||
		      rc == -ERANGE);
		check(is_pattern(&rsp, sizeof(rsp)));
		check(err.field != NULL && err.offset <= size &&
		      err.record == -1);
		return;
	}
	check(rc == 0 && is_pattern(&err, sizeof(err)));
	check(valid_response(&rsp, size));
	n = wb_hcp_response_encode(&rsp, buf, sizeof(buf));
	check(n == (ssize_t) size && memcmp(buf, data, size) == 0);
	for (size_t len = 0; len < size; len++)
		check(wb_hcp_response_encode(&rsp, buf, len) == -ENOBUFS);
	check(wb_hcp_response_decode(buf, (size_t) n, &back, NULL) == 0);
	check(back.opcode == rsp.opcode && back.request == rsp.request &&
	      back.code == rsp.code && back.count == rsp.count &&
	      back.last_seq == rsp.last_seq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_request(data, size);
	check_response(data, size);
	return 0;
}
