// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	pbring "github.com/pbring/pbring/go"
)

const schemaHelp = `usage: pbring-go schema RING [--descriptor-set FILE|-]
Print the ring's message type and its stored schema as .proto text: every
file of the set, dependencies first, each after a '// file: NAME' line.
  --descriptor-set FILE  write the stored FileDescriptorSet bytes exactly
                         to FILE instead ('-': stdout)
  --any-owner            accept a ring owned by another user (see SECURITY.md)
An untyped ring (no schema) exits 1.
`

// ringSchema is a typed ring's stored schema, ready to decode and parse
// its messages with.
type ringSchema struct {
	set   *descriptorpb.FileDescriptorSet
	files *protoregistry.Files
	types *dynamicpb.Types // resolves Any (and extensions) in the schema
	msg   protoreflect.MessageDescriptor
}

// loadSchema reads and links the schema stored in r, and finds the ring's
// message type in it. The error is the reason, for "pbring: RING: reason".
func loadSchema(r *pbring.Ring) (*ringSchema, error) {
	info := r.Info()
	if info.MsgType == "" {
		return nil, errors.New("ring is untyped (no schema)")
	}
	b, err := r.Schema()
	if err != nil {
		return nil, fmt.Errorf("read schema: %s", errText(err))
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("ring holds %s without its schema", info.MsgType)
	}
	s := &ringSchema{set: &descriptorpb.FileDescriptorSet{}}
	if err := proto.Unmarshal(b, s.set); err != nil {
		return nil, fmt.Errorf("stored schema is not a FileDescriptorSet: %v", err)
	}
	if s.files, err = protodesc.NewFiles(s.set); err != nil {
		return nil, fmt.Errorf("stored schema does not link: %v", err)
	}
	d, err := s.files.FindDescriptorByName(protoreflect.FullName(info.MsgType))
	if err != nil {
		return nil, fmt.Errorf("stored schema has no message %s", info.MsgType)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a message in the stored schema", info.MsgType)
	}
	s.msg = md
	s.types = dynamicpb.NewTypes(s.files)
	return s, nil
}

// newMessage is an empty message of the ring's type.
func (s *ringSchema) newMessage() *dynamicpb.Message { return dynamicpb.NewMessage(s.msg) }

var schemaOpts = []option{{"descriptor-set", true}, {"any-owner", false}, {"help", false}}

func cmdSchema(args []string) int {
	got, operands, ok := parseArgs("schema", args, schemaOpts)
	if !ok {
		return exitUsage // parseArgs said why
	}
	out, anyOwner := "", false
	for _, kv := range got {
		switch kv[0] {
		case "help":
			fmt.Print(schemaHelp)
			return 0
		case "descriptor-set":
			if kv[1] == "" {
				return usage("schema", "--descriptor-set: expects a FILE or -")
			}
			out = kv[1]
		case "any-owner":
			anyOwner = true
		}
	}
	if len(operands) != 1 {
		return usage("schema", "expects exactly one RING")
	}
	name := operands[0]
	r, rc := attach("schema", name, anyOwner)
	if r == nil {
		return rc
	}
	defer r.Close()
	if info := r.Info(); out != "" && info.MsgType != "" && info.SchemaLen != 0 {
		// The bytes exactly, even if they do not link here.
		return writeDescriptorSet(name, r, out)
	}
	s, err := loadSchema(r)
	if err != nil {
		fail(name, "%v", err)
		return exitRuntime
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "// message: %s\n\n", r.Info().MsgType)
	for i, f := range s.set.File {
		if i > 0 {
			_ = w.WriteByte('\n') // bufio keeps the error: Flush checks
		}
		fmt.Fprintf(w, "// file: %s\n", f.GetName())
		_, _ = w.WriteString(protoText(f)) // as above
	}
	if err := w.Flush(); err != nil {
		fail(name, "stdout: %v", err)
		return exitRuntime
	}
	return 0
}

func writeDescriptorSet(name string, r *pbring.Ring, out string) int {
	b, err := r.Schema()
	if err != nil {
		return failErr(name, "read schema", err)
	}
	if out == "-" {
		_, err = os.Stdout.Write(b)
	} else {
		// A file the user names, readable as protoc's output is (umask applies).
		err = os.WriteFile(out, b, 0o644) // #nosec G306 G703 -- the user's own output path
	}
	if err != nil {
		fail(name, "%v", err)
		return exitRuntime
	}
	return 0
}
