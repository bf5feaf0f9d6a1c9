#!/bin/sh
# Regenerate the Go code of the test schema proto/acme/telemetry/v1 (a
# user's schema, owned elsewhere: its Go import path is given with
# protoc's M options, not a go_package line). Needs protoc and
# protoc-gen-go at the version in go.mod:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.7
# `go test` needs neither: the outputs (*.pb.go here) are committed.
set -eu
cd "$(dirname "$0")/../../.."   # repository root
pkg=github.com/pbring/pbring/go/internal/acmepb
dir=acme/telemetry/v1
protoc -Iproto --go_out=go --go_opt=module=github.com/pbring/pbring/go \
	"--go_opt=M$dir/common.proto=$pkg;acmepb" \
	"--go_opt=M$dir/reading.proto=$pkg;acmepb" \
	"proto/$dir/common.proto" "proto/$dir/reading.proto"
