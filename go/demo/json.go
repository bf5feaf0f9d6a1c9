// SPDX-License-Identifier: MIT

package demo

import (
	"strconv"

	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// AppendJSON appends the canonical proto3 JSON of ev in compact form,
// byte for byte as the C consumer prints it (demo_event_json): fields in
// number order, lowerCamelCase names, 64-bit integers as strings, bytes
// as padded standard base64, default-valued fields left out. protojson is
// not used because it randomizes its whitespace.
func AppendJSON(dst []byte, ev *demov1.DeviceEvent) []byte {
	dst = append(dst, '{')
	sep := false
	field := func(name string) {
		if sep {
			dst = append(dst, ',')
		}
		sep = true
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
	}
	if id := cString(ev.Id); id != "" {
		field("id")
		dst = appendString(dst, id)
	}
	if ev.Status != 0 {
		field("status")
		dst = strconv.AppendInt(dst, int64(ev.Status), 10)
	}
	if ev.Seq != 0 {
		field("seq")
		dst = appendQuotedUint(dst, ev.Seq)
	}
	if ev.SentNs != 0 {
		field("sentNs")
		dst = appendQuotedUint(dst, ev.SentNs)
	}
	if len(ev.Blob) != 0 {
		field("blob")
		dst = append(dst, '"')
		dst = appendBase64(dst, ev.Blob)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// cString: the C consumer holds the id as a C string, so a NUL ends it.
func cString(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return s[:i]
		}
	}
	return s
}

func appendQuotedUint(dst []byte, v uint64) []byte {
	dst = append(dst, '"')
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, '"')
}

// appendString escapes as the C side (and protojson) do: '"' and '\' with
// a backslash, \b \f \n \r \t short, other control characters as
// \u00XX, every other byte as is.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\b':
			dst = append(dst, '\\', 'b')
		case c == '\f':
			dst = append(dst, '\\', 'f')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// appendBase64 is standard base64 with padding (what encoding/base64's
// StdEncoding writes), without its allocation.
func appendBase64(dst, in []byte) []byte {
	i := 0
	for ; i+2 < len(in); i += 3 {
		v := uint32(in[i])<<16 | uint32(in[i+1])<<8 | uint32(in[i+2])
		dst = append(dst, b64[v>>18], b64[v>>12&63], b64[v>>6&63], b64[v&63])
	}
	switch len(in) - i {
	case 1:
		v := uint32(in[i]) << 16
		dst = append(dst, b64[v>>18], b64[v>>12&63], '=', '=')
	case 2:
		v := uint32(in[i])<<16 | uint32(in[i+1])<<8
		dst = append(dst, b64[v>>18], b64[v>>12&63], b64[v>>6&63], '=')
	}
	return dst
}
