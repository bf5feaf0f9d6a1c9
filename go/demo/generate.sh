#!/bin/sh
# Regenerate the committed protobuf artefacts of the demo schema from
# proto/pbring/demo/v1/device.proto (owned elsewhere: not edited here, so
# its Go import path is given with protoc's M option instead of a
# go_package line). Needs protoc and protoc-gen-go at the version in
# go.mod:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.7
# `go test` needs neither: the outputs are committed.
set -eu
cd "$(dirname "$0")/../.."   # repository root
proto=pbring/demo/v1/device.proto
pkg=github.com/pbring/pbring/go/proto/pbring/demo/v1
protoc -Iproto --go_out=go --go_opt=module=github.com/pbring/pbring/go \
	"--go_opt=M$proto=$pkg;demov1" "proto/$proto"
# The FileDescriptorSet exactly as the C build embeds it (same protoc
# invocation as cmake/PbringNanopb.cmake), so both compute the same
# schema hash.
(cd proto && protoc -I. --include_imports \
	--descriptor_set_out=../go/demo/device.fds "$proto")
