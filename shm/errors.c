/* SPDX-License-Identifier: MIT */
/*
 * Version, error strings and name rules: the small pieces of the API that
 * touch no ring.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "internal.h"

#define PBR_STR2(x) #x
#define PBR_STR(x) PBR_STR2(x)

const char *pbr_version(void)
{
	return PBR_STR(PBRING_VERSION_MAJOR) "." PBR_STR(
		PBRING_VERSION_MINOR) "." PBR_STR(PBRING_VERSION_PATCH);
}

/* Our meaning of the codes that pbring gives a specific sense. */
static const struct {
	int err;
	const char *msg;
} pbr_errors[] = {
	{EPROTO, "not a pbring ring (bad magic)"},
	{EPROTONOSUPPORT, "ring made by an unsupported major format version"},
	{EPROTOTYPE, "ring layout fingerprint mismatch"},
	{ENOTSUP, "ring uses an unknown incompatible feature"},
	{EUCLEAN, "ring is damaged (unfinished creation, truncated, or "
		  "inconsistent geometry)"},
	{EMSGSIZE, "message larger than the slot payload capacity"},
	{EBADMSG, "corrupt slot (bad length, CRC or encoding)"},
	{EOWNERDEAD, "slot reclaimed: its producer was taken for dead"},
	{ESTALE, "slot overwritten while it was being read"},
	{EAGAIN, "would block (ring full or empty)"},
	{ETIMEDOUT, "timed out"},
	{EINPROGRESS, "a reservation is already open"},
	{EBUSY, "no free participant entry"},
	{EEXIST, "ring already exists"},
	{ENOENT, "no such ring"},
	{EPERM, "ring owned by another user or writable by everyone"},
	{EACCES, "permission denied"},
	{ENODEV, "not a regular shared-memory object"},
	{EMEDIUMTYPE, "ring holds another message type"},
	{ENOBUFS, "buffer too small for the message"},
	{EINTR, "interrupted"},
	{EIDRM, "ring was removed while in use"},
	{EROFS, "ring attached read-only: only tap readers can use it"},
};

const char *pbr_strerror(int err)
{
	size_t i;

	if (err < 0)
		err = err == INT_MIN ? 0x7fffffff
				     : -err; /* -INT_MIN overflows */
	for (i = 0; i < sizeof(pbr_errors) / sizeof(pbr_errors[0]); i++)
		if (pbr_errors[i].err == err)
			return pbr_errors[i].msg;
	/* strerror's buffer is static in glibc for known codes; unknown
	 * ones say so in a thread-safe way. */
	return err == 0		      ? "success"
	       : strerrordesc_np(err) ? strerrordesc_np(err)
				      : "unknown error";
}

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

int pbr_name_check(const char *name)
{
	size_t n;

	if (!name || !name[0] || name[0] == '.')
		return -EINVAL;
	for (n = 0; name[n]; n++)
		if (n >= PBR_NAME_MAX || !name_char_ok(name[n]))
			return -EINVAL;
	return 0;
}
