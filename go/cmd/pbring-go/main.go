// SPDX-License-Identifier: MIT

// Command pbring-go is the Go twin of the C `pbring produce` and `pbring
// consume`: the same flags, the same DeviceEvents, the same --json lines
// and summary, the same one-line errors ("pbring: RING: reason") and exit
// codes (0 success, 1 runtime error, 2 usage error), so that either side
// of a ring can be C or Go.
//
//	pbring-go produce RING [--count N] [--rate HZ] [--size BYTES]
//	          [--producers K] [--timeout SEC] [--no-wait] [--raw]
//	pbring-go consume RING [--count N] [--timeout SEC]
//	          [--from oldest|latest] [--lossy] [--json|--quiet] [--raw]
package main

import (
	"fmt"
	"os"
)

const mainHelp = `usage: pbring-go COMMAND [ARGS]
Protobuf messages between processes through a shared-memory ring (Go).

commands:
  produce RING   send DeviceEvent messages
  consume RING   receive, check and summarise messages

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
	}
	fmt.Fprintf(os.Stderr, "pbring-go: unknown command '%s' (see 'pbring-go --help')\n", args[0])
	return exitUsage
}
