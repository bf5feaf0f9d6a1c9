// SPDX-License-Identifier: MIT

//go:build amd64 || arm64

package pbring

// spinPause is the CPU's spin-wait hint (PAUSE, YIELD): it eases the
// pressure a spinning core puts on its sibling and on the memory bus.

func spinPause()
