/* SPDX-License-Identifier: MIT */
/* The crash-point hook of the torture builds (crash.h). */
#include "crash.h"

#ifdef PBRING_CRASH_POINTS
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void pbri_crash_point(const char *name)
{
	static _Atomic long hits;
	const char *at = getenv("PBR_CRASH_AT");
	size_t n = strlen(name);
	long nth = 1;

	if (!at || strncmp(at, name, n) || (at[n] && at[n] != ':'))
		return;
	if (at[n] == ':')
		nth = strtol(at + n + 1, NULL, 10);
	if (atomic_fetch_add(&hits, 1) + 1 == nth)
		(void)raise(SIGKILL); /* cannot fail for our own pid */
}
#endif
