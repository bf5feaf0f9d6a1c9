// SPDX-License-Identifier: MIT

//go:build !amd64 && !arm64

package pbring

// spinPause has no portable spin-wait hint; an empty call still paces the
// loop.
func spinPause() {}
