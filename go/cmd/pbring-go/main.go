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
//	          [--from oldest|latest] [--lossy] [--json|--quiet|--raw]
//	pbring-go schema RING [--descriptor-set FILE|-]
package main

import (
	"fmt"
	"os"
)

const mainHelp = `usage: pbring-go COMMAND [ARGS]
Protobuf messages between processes through a shared-memory ring (Go).

commands:
  produce RING   send demo DeviceEvents, or JSON lines (--from-json)
  consume RING   receive, check and print messages (JSON, or --raw frames)
  schema RING    print the ring's message type and schema

'pbring-go COMMAND --help' describes each. Exit status: 0 success,
1 runtime error, 2 usage error.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, mainHelp)
		return exitUsage
	}
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
	}
	fmt.Fprintf(os.Stderr, "pbring-go: unknown command '%s' (see 'pbring-go --help')\n", args[0])
	return exitUsage
}
