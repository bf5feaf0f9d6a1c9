// SPDX-License-Identifier: MIT

package main

import (
	"fmt"
	"strconv"
	"strings"

	dpb "google.golang.org/protobuf/types/descriptorpb"
)

// protoText prints a FileDescriptorProto as .proto source that protoc
// compiles back to the same descriptors: syntax, package, imports, enums,
// messages (nested types, oneofs, map<K,V>, proto3 optional, groups,
// reserved and extension ranges), extensions and services. Type names are
// written fully qualified (".pkg.Msg"). Options are left out except those
// that change the descriptors' meaning or the JSON mapping: packed,
// json_name when explicit, default values, deprecated, allow_alias.
// File-level options (go_package, java_*, ...) are not printed. Editions
// files are printed with their edition line but without features.
func protoText(f *dpb.FileDescriptorProto) string {
	p := &printer{file: f}
	p.printFile()
	return p.b.String()
}

type printer struct {
	b      strings.Builder
	indent int
	file   *dpb.FileDescriptorProto
}

func (p *printer) line(format string, a ...any) {
	if format == "" {
		p.b.WriteByte('\n')
		return
	}
	p.b.WriteString(strings.Repeat("  ", p.indent))
	fmt.Fprintf(&p.b, format, a...)
	p.b.WriteByte('\n')
}

func (p *printer) printFile() {
	f := p.file
	switch s := f.GetSyntax(); s {
	case "", "proto2":
		p.line(`syntax = "proto2";`)
	case "editions":
		p.line(`edition = "%s";`, strings.TrimPrefix(f.GetEdition().String(), "EDITION_"))
	default:
		p.line(`syntax = %s;`, quote(s))
	}
	if f.GetPackage() != "" {
		p.line("")
		p.line("package %s;", f.GetPackage())
	}
	if len(f.Dependency) > 0 {
		p.line("")
	}
	for i, d := range f.Dependency {
		kind := ""
		if contains(f.PublicDependency, int32(i)) {
			kind = "public "
		} else if contains(f.WeakDependency, int32(i)) {
			kind = "weak "
		}
		p.line("import %s%s;", kind, quote(d))
	}
	for _, e := range f.EnumType {
		p.line("")
		p.printEnum(e)
	}
	for _, m := range f.MessageType {
		p.line("")
		p.printMessage(m)
	}
	if len(f.Extension) > 0 {
		p.line("")
		p.printExtensions(f.Extension)
	}
	for _, s := range f.Service {
		p.line("")
		p.printService(s)
	}
}

func contains(xs []int32, x int32) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (p *printer) printEnum(e *dpb.EnumDescriptorProto) {
	p.line("enum %s {", e.GetName())
	p.indent++
	if e.GetOptions().GetAllowAlias() {
		p.line("option allow_alias = true;")
	}
	if e.GetOptions().GetDeprecated() {
		p.line("option deprecated = true;")
	}
	for _, v := range e.Value {
		opt := ""
		if v.GetOptions().GetDeprecated() {
			opt = " [deprecated = true]"
		}
		p.line("%s = %d%s;", v.GetName(), v.GetNumber(), opt)
	}
	var ranges []string
	for _, r := range e.ReservedRange { // inclusive ends
		ranges = append(ranges, rangeText(r.GetStart(), r.GetEnd(), 2147483647))
	}
	p.reserved(ranges, e.ReservedName)
	p.indent--
	p.line("}")
}

func rangeText(start, end, max int32) string {
	switch {
	case start == end:
		return strconv.Itoa(int(start))
	case end == max:
		return fmt.Sprintf("%d to max", start)
	}
	return fmt.Sprintf("%d to %d", start, end)
}

func (p *printer) reserved(ranges, names []string) {
	if len(ranges) > 0 {
		p.line("reserved %s;", strings.Join(ranges, ", "))
	}
	if len(names) > 0 {
		q := make([]string, len(names))
		for i, n := range names {
			q[i] = quote(n)
		}
		p.line("reserved %s;", strings.Join(q, ", "))
	}
}

// lastName is the last component of a type name.
func lastName(typeName string) string {
	return typeName[strings.LastIndexByte(typeName, '.')+1:]
}

// nestedOf finds m's nested type that a field's type_name names.
func nestedOf(m *dpb.DescriptorProto, typeName string) *dpb.DescriptorProto {
	for _, n := range m.NestedType {
		if n.GetName() == lastName(typeName) {
			return n
		}
	}
	return nil
}

// mapEntryOf is the map entry type of a map field of m, or nil.
func mapEntryOf(m *dpb.DescriptorProto, f *dpb.FieldDescriptorProto) *dpb.DescriptorProto {
	if f.GetLabel() != dpb.FieldDescriptorProto_LABEL_REPEATED || f.GetType() != dpb.FieldDescriptorProto_TYPE_MESSAGE {
		return nil
	}
	if n := nestedOf(m, f.GetTypeName()); n != nil && n.GetOptions().GetMapEntry() {
		return n
	}
	return nil
}

// groupOf is the nested type a group field's body is, or nil.
func groupOf(m *dpb.DescriptorProto, f *dpb.FieldDescriptorProto) *dpb.DescriptorProto {
	if f.GetType() != dpb.FieldDescriptorProto_TYPE_GROUP {
		return nil
	}
	return nestedOf(m, f.GetTypeName())
}

// printMessage prints the fields and nested types in the order that
// makes protoc rebuild nested_type in the same order: a map field's entry
// type (and a group's type) is added where the field is declared.
func (p *printer) printMessage(m *dpb.DescriptorProto) {
	p.line("message %s {", m.GetName())
	p.indent++
	if m.GetOptions().GetDeprecated() {
		p.line("option deprecated = true;")
	}
	for _, e := range m.EnumType {
		p.printEnum(e)
	}
	inline := map[*dpb.DescriptorProto]*dpb.FieldDescriptorProto{}
	for _, f := range m.Field {
		if n := mapEntryOf(m, f); n != nil {
			inline[n] = f
		} else if n := groupOf(m, f); n != nil {
			inline[n] = f
		}
	}
	done := make([]bool, len(m.Field))
	fieldIndex := func(f *dpb.FieldDescriptorProto) int {
		for i, g := range m.Field {
			if g == f {
				return i
			}
		}
		return -1
	}
	next := 0
	printUpTo := func(end int) { // fields [next, end)
		for ; next < end; next++ {
			if !done[next] {
				p.printFieldAt(m, next, done)
			}
		}
	}
	for _, n := range m.NestedType {
		if f, ok := inline[n]; ok {
			printUpTo(fieldIndex(f) + 1)
			continue
		}
		p.printMessage(n)
	}
	printUpTo(len(m.Field))
	if len(m.Extension) > 0 {
		p.printExtensions(m.Extension)
	}
	var ranges []string
	for _, r := range m.ExtensionRange { // exclusive ends
		ranges = append(ranges, rangeText(r.GetStart(), r.GetEnd()-1, 536870911))
	}
	if len(ranges) > 0 {
		p.line("extensions %s;", strings.Join(ranges, ", "))
	}
	ranges = ranges[:0]
	for _, r := range m.ReservedRange { // exclusive ends
		ranges = append(ranges, rangeText(r.GetStart(), r.GetEnd()-1, 536870911))
	}
	p.reserved(ranges, m.ReservedName)
	p.indent--
	p.line("}")
}

// isSynthetic: the oneof proto3 makes for an optional field.
func isSynthetic(m *dpb.DescriptorProto, oneof int32) bool {
	for _, f := range m.Field {
		if f.OneofIndex != nil && f.GetOneofIndex() == oneof && f.GetProto3Optional() {
			return true
		}
	}
	return false
}

// printFieldAt prints field i, or the whole oneof it starts.
func (p *printer) printFieldAt(m *dpb.DescriptorProto, i int, done []bool) {
	f := m.Field[i]
	if f.OneofIndex == nil || isSynthetic(m, f.GetOneofIndex()) {
		p.printField(m, f, false)
		done[i] = true
		return
	}
	o := f.GetOneofIndex()
	p.line("oneof %s {", m.OneofDecl[o].GetName())
	p.indent++
	for j := i; j < len(m.Field); j++ {
		if g := m.Field[j]; g.OneofIndex != nil && g.GetOneofIndex() == o {
			p.printField(m, g, true)
			done[j] = true
		}
	}
	p.indent--
	p.line("}")
}

var scalarNames = map[dpb.FieldDescriptorProto_Type]string{
	dpb.FieldDescriptorProto_TYPE_DOUBLE: "double", dpb.FieldDescriptorProto_TYPE_FLOAT: "float",
	dpb.FieldDescriptorProto_TYPE_INT64: "int64", dpb.FieldDescriptorProto_TYPE_UINT64: "uint64",
	dpb.FieldDescriptorProto_TYPE_INT32: "int32", dpb.FieldDescriptorProto_TYPE_FIXED64: "fixed64",
	dpb.FieldDescriptorProto_TYPE_FIXED32: "fixed32", dpb.FieldDescriptorProto_TYPE_BOOL: "bool",
	dpb.FieldDescriptorProto_TYPE_STRING: "string", dpb.FieldDescriptorProto_TYPE_BYTES: "bytes",
	dpb.FieldDescriptorProto_TYPE_UINT32: "uint32", dpb.FieldDescriptorProto_TYPE_SFIXED32: "sfixed32",
	dpb.FieldDescriptorProto_TYPE_SFIXED64: "sfixed64", dpb.FieldDescriptorProto_TYPE_SINT32: "sint32",
	dpb.FieldDescriptorProto_TYPE_SINT64: "sint64",
}

func typeText(f *dpb.FieldDescriptorProto) string {
	if s, ok := scalarNames[f.GetType()]; ok {
		return s
	}
	return f.GetTypeName()
}

func (p *printer) label(f *dpb.FieldDescriptorProto, inOneof bool) string {
	switch {
	case inOneof:
		return ""
	case f.GetLabel() == dpb.FieldDescriptorProto_LABEL_REPEATED:
		return "repeated "
	case f.GetProto3Optional():
		return "optional "
	case p.file.GetSyntax() == "proto3" || p.file.GetSyntax() == "editions":
		return ""
	case f.GetLabel() == dpb.FieldDescriptorProto_LABEL_REQUIRED:
		return "required "
	}
	return "optional "
}

func (p *printer) printField(m *dpb.DescriptorProto, f *dpb.FieldDescriptorProto, inOneof bool) {
	opts := p.fieldOptions(f)
	if m != nil {
		if n := mapEntryOf(m, f); n != nil {
			var k, v *dpb.FieldDescriptorProto
			for _, g := range n.Field {
				if g.GetNumber() == 1 {
					k = g
				} else if g.GetNumber() == 2 {
					v = g
				}
			}
			if k != nil && v != nil {
				p.line("map<%s, %s> %s = %d%s;", typeText(k), typeText(v), f.GetName(), f.GetNumber(), opts)
				return
			}
		}
		if n := groupOf(m, f); n != nil {
			p.line("%sgroup %s = %d%s {", p.label(f, inOneof), n.GetName(), f.GetNumber(), opts)
			p.indent++
			// The group's body: its own fields and nested types.
			p.printMessageBody(n)
			p.indent--
			p.line("}")
			return
		}
	}
	p.line("%s%s %s = %d%s;", p.label(f, inOneof), typeText(f), f.GetName(), f.GetNumber(), opts)
}

// printMessageBody prints a message's contents without its braces (the
// body of a group).
func (p *printer) printMessageBody(m *dpb.DescriptorProto) {
	var sub printer
	sub.file, sub.indent = p.file, p.indent-1
	sub.printMessage(m)
	text := sub.b.String()
	// Drop the "message  {" line and the closing brace.
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for _, l := range lines[1 : len(lines)-1] {
		p.b.WriteString(l)
		p.b.WriteByte('\n')
	}
}

func (p *printer) fieldOptions(f *dpb.FieldDescriptorProto) string {
	var o []string
	if f.DefaultValue != nil {
		o = append(o, "default = "+defaultText(f))
	}
	if f.JsonName != nil && f.Extendee == nil && f.GetJsonName() != jsonCamel(f.GetName()) {
		o = append(o, "json_name = "+quote(f.GetJsonName()))
	}
	if opt := f.GetOptions(); opt != nil {
		if opt.Packed != nil {
			o = append(o, "packed = "+strconv.FormatBool(opt.GetPacked()))
		}
		if opt.GetDeprecated() {
			o = append(o, "deprecated = true")
		}
	}
	if len(o) == 0 {
		return ""
	}
	return " [" + strings.Join(o, ", ") + "]"
}

func defaultText(f *dpb.FieldDescriptorProto) string {
	v := f.GetDefaultValue()
	switch f.GetType() {
	case dpb.FieldDescriptorProto_TYPE_STRING:
		return quote(v)
	case dpb.FieldDescriptorProto_TYPE_BYTES:
		return `"` + v + `"` // stored C-escaped already
	}
	return v // numbers, true/false, inf/nan, enum value names
}

// jsonCamel is protoc's default json_name (ToJsonName).
func jsonCamel(name string) string {
	var b strings.Builder
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
			b.WriteByte(c)
			up = false
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// quote is a .proto string literal: printable ASCII as is, the rest
// escaped (octal for bytes outside it).
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// printExtensions prints extend blocks, one per extendee in order of
// first appearance.
func (p *printer) printExtensions(xs []*dpb.FieldDescriptorProto) {
	var order []string
	by := map[string][]*dpb.FieldDescriptorProto{}
	for _, x := range xs {
		if _, ok := by[x.GetExtendee()]; !ok {
			order = append(order, x.GetExtendee())
		}
		by[x.GetExtendee()] = append(by[x.GetExtendee()], x)
	}
	for _, e := range order {
		p.line("extend %s {", e)
		p.indent++
		for _, x := range by[e] {
			p.printField(nil, x, false)
		}
		p.indent--
		p.line("}")
	}
}

func (p *printer) printService(s *dpb.ServiceDescriptorProto) {
	p.line("service %s {", s.GetName())
	p.indent++
	for _, m := range s.Method {
		in, out := "", ""
		if m.GetClientStreaming() {
			in = "stream "
		}
		if m.GetServerStreaming() {
			out = "stream "
		}
		p.line("rpc %s(%s%s) returns (%s%s);", m.GetName(), in, m.GetInputType(), out, m.GetOutputType())
	}
	p.indent--
	p.line("}")
}
