/* SPDX-License-Identifier: MIT */
/*
 * Schema identity: which protobuf message a ring carries (its msg_type)
 * and which version of its schema (schema_hash over the serialized
 * FileDescriptorSet kept in the ring's schema region).
 */
#include <errno.h>
#include <string.h>

#include "codec.h"
#include "pbring/demo.h"

int pbr_ring_check_type(const struct pbr_ring *ring, const char *msg_type,
			uint64_t schema_hash)
{
	struct pbr_ring_info info;

	if (!ring || !msg_type)
		return -EINVAL;
	pbr_ring_info(ring, &info);
	if (!info.msg_type[0] || strcmp(info.msg_type, msg_type) != 0)
		return -EMEDIUMTYPE;
	if (schema_hash && info.schema_hash && schema_hash != info.schema_hash)
		return -EMEDIUMTYPE;
	return 0;
}

void pbr_demo_schema(const void **fds, uint32_t *len)
{
	*fds = pbr_demo_fds;
	*len = (uint32_t)pbr_demo_fds_len; /* a few hundred bytes */
}
