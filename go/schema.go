// SPDX-License-Identifier: MIT

package pbring

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// SchemaOf returns the canonical schema bytes of m's message type
// (FORMAT.md §3.2), the bytes to store in a ring that carries it
// (CreateOptions.Schema, with SchemaHash(bytes)): a serialized
// FileDescriptorSet of the file defining the type and every file it
// imports, transitively, each once, each after its imports, in the order
// `protoc --include_imports --descriptor_set_out` writes them; every
// field has its json_name, no file has source_code_info, and the set is
// marshalled deterministically (fields in number order). For the same
// .proto files it gives the bytes protoc and the other languages' helpers
// give, so rings made from either have the same schema hash.
//
// A file whose import could not be resolved when the generated code was
// loaded (a placeholder) is an error: the set would lack a dependency.
func SchemaOf(m proto.Message) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: SchemaOf(nil)", ErrInvalid)
	}
	md := m.ProtoReflect().Descriptor()
	set, err := fileSet(md.ParentFile())
	if err != nil {
		return nil, err
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(set)
}

// fileSet is protoc's GetTransitiveDependencies: depth first over each
// file's imports in declaration order, the file after its imports.
func fileSet(root protoreflect.FileDescriptor) (*descriptorpb.FileDescriptorSet, error) {
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var walk func(f protoreflect.FileDescriptor) error
	walk = func(f protoreflect.FileDescriptor) error {
		if seen[f.Path()] {
			return nil
		}
		seen[f.Path()] = true
		if f.IsPlaceholder() {
			return fmt.Errorf("%w: schema of %s: import %q is not linked in", ErrInvalid, root.Path(), f.Path())
		}
		imps := f.Imports()
		for i := 0; i < imps.Len(); i++ {
			if err := walk(imps.Get(i).FileDescriptor); err != nil {
				return err
			}
		}
		fp := protodesc.ToFileDescriptorProto(f)
		fp.SourceCodeInfo = nil
		setJSONNames(f, fp)
		set.File = append(set.File, fp)
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	return set, nil
}

// setJSONNames gives every field and extension of fp its json_name as
// protoc writes it: the explicit json_name option, or protoc's
// lowerCamelCase of the name (extensions: always the latter).
func setJSONNames(f protoreflect.FileDescriptor, fp *descriptorpb.FileDescriptorProto) {
	exts := func(xs protoreflect.ExtensionDescriptors, ps []*descriptorpb.FieldDescriptorProto) {
		for i, p := range ps {
			p.JsonName = proto.String(jsonName(string(xs.Get(i).Name())))
		}
	}
	var msgs func(ms protoreflect.MessageDescriptors, ps []*descriptorpb.DescriptorProto)
	msgs = func(ms protoreflect.MessageDescriptors, ps []*descriptorpb.DescriptorProto) {
		for i, p := range ps {
			m := ms.Get(i)
			for j, fp := range p.Field {
				fp.JsonName = proto.String(m.Fields().Get(j).JSONName())
			}
			exts(m.Extensions(), p.Extension)
			msgs(m.Messages(), p.NestedType)
		}
	}
	msgs(f.Messages(), fp.MessageType)
	exts(f.Extensions(), fp.Extension)
}

// jsonName is protoc's ToJsonName: drop each '_' and upper-case the
// letter after it.
func jsonName(name string) string {
	out := make([]byte, 0, len(name))
	up := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			up = true
		case up:
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			up = false
		default:
			out = append(out, c)
		}
	}
	return string(out)
}
