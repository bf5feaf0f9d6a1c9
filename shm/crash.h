/* SPDX-License-Identifier: MIT */
/* Private: the crash-point hook of the torture builds, for every layer. */
#ifndef PBR_CRASH_H
#define PBR_CRASH_H

/*
 * Named crash points for the SIGKILL torture tests (tests/crash): in a
 * build with PBRING_CRASH_POINTS, the process kills itself with SIGKILL at
 * the point named by the environment variable PBR_CRASH_AT ("name" or
 * "name:N" for its N-th passage). Compiled out otherwise.
 */
#ifdef PBRING_CRASH_POINTS
void pbri_crash_point(const char *name);
#define PBR_CRASH(name) pbri_crash_point(name)
#else
#define PBR_CRASH(name) ((void)0)
#endif

#endif /* PBR_CRASH_H */
