/* SPDX-License-Identifier: MIT */
/* `pbring demo`: a producer and two consumers on a fresh ring. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

static pid_t spawn(const char *self, char *const argv[])
{
	pid_t pid = fork();

	if (pid == 0) {
		execv(self, argv);
		_exit(127);
	}
	return pid;
}

static int wait_ok(pid_t pid)
{
	int st;

	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static const char demo_help[] =
	"usage: pbring demo [--count N]\n"
	"Create a ring, run one producer and two consumers (one gating, one\n"
	"lossy) concurrently as separate processes, print their summaries, "
	"and\n"
	"remove the ring.\n";

int cmd_demo(int argc, char **argv, const char *self)
{
	char ring[64], count[24] = "200000";
	uint64_t n;
	pid_t c1, c2, p;
	int ok;

	if (argc > 1 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(demo_help, stdout);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "--count") &&
	    cli_u64(argv[2], 1, UINT64_MAX / 2, &n))
		snprintf(count, sizeof(count), "%s", argv[2]);
	else if (argc != 1)
		return cli_usage("demo", "takes only --count N");
	snprintf(ring, sizeof(ring), "demo-%d", (int)getpid());
	{
		char *a[] = {"pbring", "create", ring, "--slots", "4096", NULL};

		if (!wait_ok(spawn(self, a)))
			return EXIT_RUNTIME;
	}
	printf("ring %s: 1 producer -> 1 gating + 1 lossy consumer, %s "
	       "DeviceEvents\n",
	       ring, count);
	fflush(stdout);
	{
		char *g[] = {"pbring",	"consume",   ring, "--count", count,
			     "--quiet", "--timeout", "10", NULL};
		char *l[] = {"pbring",	"consume",   ring, "--quiet",
			     "--lossy", "--timeout", "1",  NULL};
		char *pr[] = {"pbring", "produce", ring, "--count",
			      count,	"--size",  "64", NULL};

		c1 = spawn(self, g);
		c2 = spawn(self, l);
		usleep(200 * 1000); /* let both consumers attach first */
		p = spawn(self, pr);
		ok = wait_ok(p);
		ok &= wait_ok(c1);
		(void)wait_ok(c2); /* a lossy consumer may see losses: fine */
	}
	(void)pbr_ring_unlink(ring);
	return ok ? 0 : EXIT_RUNTIME;
}
