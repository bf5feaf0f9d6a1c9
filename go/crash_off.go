// SPDX-License-Identifier: MIT

//go:build !pbring_crash

package pbring

// crashPoints: this build has no crash points (build tag pbring_crash off).
const crashPoints = false

// crashPoint names a protocol step at which a torture build (build tag
// pbring_crash) may kill the process; in normal builds it is nothing.
func crashPoint(string) {}
