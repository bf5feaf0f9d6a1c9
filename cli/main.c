/* SPDX-License-Identifier: MIT */
/* The `pbring` command: dispatch to subcommands, and `pbring demo`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

static const char main_help[] =
	"usage: pbring [--log-format json] COMMAND [ARGS]\n"
	"Protobuf messages between processes through a shared-memory ring.\n"
	"\n"
	"commands:\n"
	"  create RING    create a ring\n"
	"  produce RING   send messages: JSON lines, or demo DeviceEvents\n"
	"  consume RING   receive, check and summarise messages (JSON, raw)\n"
	"  schema RING    show a ring's message type and schema\n"
	"  stat RING      show a ring's geometry, participants and counters\n"
	"  check RING     health check: exit 0 if intact, live, keeping up\n"
	"  exporter       serve rings' metrics to Prometheus (/metrics)\n"
	"  top            a live view of the rings' producers and readers\n"
	"  record RING... record rings to an MCAP file\n"
	"  info FILE      show what an MCAP file holds\n"
	"  replay FILE... publish MCAP files' messages back into rings\n"
	"  cat FILE...    print MCAP files' messages (text or JSON)\n"
	"  bridge DIR     carry messages between a ring and a Redis stream\n"
	"  ls             list rings\n"
	"  rm RING...     remove rings\n"
	"  demo           a producer and two consumers on a fresh ring\n"
	"\n"
	"'pbring COMMAND --help' describes each. Exit status: 0 success,\n"
	"1 runtime error, 2 usage error.\n"
	"  --log-format json  (before COMMAND) every line on stderr as a "
	"JSON\n"
	"                     object: ts, level, service, event, ring, "
	"trace_id,\n"
	"                     message\n";

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	/* --log-format json|text before the command (docs/CLI.md, "Logs") */
	if (cmd && (!strcmp(cmd, "--log-format") ||
		    !strncmp(cmd, "--log-format=", 13))) {
		const char *v = cmd[12] == '=' ? cmd + 13
				: argc > 2     ? argv[2]
					       : "";

		if (strcmp(v, "json") && strcmp(v, "text")) {
			fprintf(stderr,
				"pbring: --log-format: '%s' is not json or "
				"text (see 'pbring --help')\n",
				v);
			return EXIT_USAGE;
		}
		cli_log_json = !strcmp(v, "json");
		argc -= cmd[12] == '=' ? 1 : 2;
		argv += cmd[12] == '=' ? 1 : 2;
		cmd = argc > 1 ? argv[1] : NULL;
	}
	if (!cmd || !strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
	    !strcmp(cmd, "help")) {
		fputs(main_help, cmd ? stdout : stderr);
		return cmd ? 0 : EXIT_USAGE;
	}
	if (!strcmp(cmd, "--version")) {
		printf("pbring %s (segment format %u.%u)\n", pbr_version(),
		       PBR_FORMAT_MAJOR, PBR_FORMAT_MINOR);
		return 0;
	}
	cli_cmd = cmd;
	argc--, argv++;
	if (!strcmp(cmd, "create"))
		return cmd_create(argc, argv);
	if (!strcmp(cmd, "produce"))
		return cmd_produce(argc, argv);
	if (!strcmp(cmd, "consume"))
		return cmd_consume(argc, argv);
	if (!strcmp(cmd, "schema"))
		return cmd_schema(argc, argv);
	if (!strcmp(cmd, "stat"))
		return cmd_stat(argc, argv);
	if (!strcmp(cmd, "check"))
		return cmd_check(argc, argv);
	if (!strcmp(cmd, "ls"))
		return cmd_ls(argc, argv);
	if (!strcmp(cmd, "rm"))
		return cmd_rm(argc, argv);
	if (!strcmp(cmd, "exporter"))
		return cmd_exporter(argc, argv);
	if (!strcmp(cmd, "top"))
		return cmd_top(argc, argv);
	if (!strcmp(cmd, "record"))
		return cmd_record(argc, argv);
	if (!strcmp(cmd, "info"))
		return cmd_info(argc, argv);
	if (!strcmp(cmd, "replay"))
		return cmd_replay(argc, argv);
	if (!strcmp(cmd, "cat"))
		return cmd_cat(argc, argv);
	if (!strcmp(cmd, "bridge"))
		return cmd_bridge(argc, argv);
	if (!strcmp(cmd, "demo"))
		return cmd_demo(argc, argv, "/proc/self/exe");
	cli_cmd = "pbring";
	if (cli_log_json)
		cli_log("error", "usage", NULL, NULL, "",
			"unknown command '%s'", cmd);
	else
		fprintf(stderr,
			"pbring: unknown command '%s' (see 'pbring --help')\n",
			cmd);
	return EXIT_USAGE;
}
