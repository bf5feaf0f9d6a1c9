// SPDX-License-Identifier: MIT

package main

import (
	"math"
	"math/bits"
)

// hist is the C command's latency histogram (cli/cli.c), bucket for
// bucket, so that both print the same percentiles for the same samples:
// 64 octaves x 32 linear steps, about 3 % resolution, no allocation per
// sample.
const histSub = 32

type hist struct {
	count, max, min uint64
	bucket          [64 * histSub]uint64
}

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	oct := bits.Len64(v) - 1
	sub := int((v >> (oct - 5)) & (histSub - 1))
	return (oct-4)*histSub + sub
}

// histValue is the bucket's midpoint.
func histValue(i int) uint64 {
	if i < histSub {
		return uint64(i) // #nosec G115 -- a bucket index: 0 <= i < histSub here
	}
	oct, sub := i/histSub+4, i%histSub
	return uint64(histSub+sub)<<(oct-5) + (uint64(1)<<(oct-5))>>1
}

func (h *hist) add(v uint64) {
	h.bucket[histIndex(v)]++
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.count++
}

func (h *hist) pct(p float64) uint64 {
	if h.count == 0 {
		return 0
	}
	want := uint64(math.Ceil(p / 100.0 * float64(h.count)))
	if want < 1 {
		want = 1
	}
	seen := uint64(0)
	for i := range h.bucket {
		seen += h.bucket[i]
		if seen >= want {
			v := histValue(i)
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
