// SPDX-License-Identifier: MIT

// Command pbring-go is the Go twin of the C `pbring produce`, `pbring
// consume` and `pbring schema` (docs/CLI.md): the same flags, the same
// DeviceEvents, the same JSON lines and summary, the same one-line errors
// ("pbring: RING: reason") and exit codes (0 success, 1 runtime error, 2
// usage error), so that either side of a ring can be C or Go.
//
//	pbring-go produce RING --from-json FILE|- [--timeout SEC] [--no-wait]
//	pbring-go produce RING [--count N] [--rate HZ] [--size BYTES]
//	          [--producers K] [--timeout SEC] [--no-wait] [--raw]
//	pbring-go consume RING [--count N] [--timeout SEC]
//	          [--from oldest|latest] [--lossy|--tap|--durable NAME] [--json|--quiet|--raw]
//	pbring-go schema RING [--descriptor-set FILE|-]
//	pbring-go check RING [--producers N] [--readers N] [--max-lag N]
//	          [--max-age SEC] [--wait SEC] [--quiet]
package main

import (
	"fmt"
	"os"
	"strings"
)

const mainHelp = `usage: pbring-go [--log-format json] COMMAND [ARGS]
Protobuf messages between processes through a shared-memory ring (Go).

commands:
  produce RING   send demo DeviceEvents, or JSON lines (--from-json)
  consume RING   receive, check and print messages (JSON, or --raw frames)
  schema RING    print the ring's message type and schema
  check RING     health check: exit 0 if intact, live, keeping up

'pbring-go COMMAND --help' describes each. Exit status: 0 success,
1 runtime error, 2 usage error.
  --log-format json  (before COMMAND) every line on stderr as a JSON
                     object: ts, level, service, event, ring, trace_id,
                     message
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && (args[0] == "--log-format" || strings.HasPrefix(args[0], "--log-format=")) {
		v, n := strings.TrimPrefix(args[0], "--log-format="), 1
		if args[0] == "--log-format" {
			v, n = "", 2
			if len(args) > 1 {
				v = args[1]
			}
		}
		if v != "json" && v != "text" {
			fmt.Fprintf(os.Stderr, "pbring-go: --log-format: '%s' is not json or text (see 'pbring-go --help')\n", v)
			return exitUsage
		}
		logJSON = v == "json"
		args = args[min(n, len(args)):]
	}
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, mainHelp)
		return exitUsage
	}
	logCmd = args[0]
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Print(mainHelp)
		return 0
	case "produce":
		return cmdProduce(args[1:])
	case "consume":
		return cmdConsume(args[1:])
	case "schema":
		return cmdSchema(args[1:])
	case "check":
		return cmdCheck(args[1:])
	}
	logCmd = "pbring"
	if logJSON {
		logLine("error", "usage", "", "", "", fmt.Sprintf("unknown command '%s'", args[0]))
	} else {
		fmt.Fprintf(os.Stderr, "pbring-go: unknown command '%s' (see 'pbring-go --help')\n", args[0])
	}
	return exitUsage
}
