// SPDX-License-Identifier: MIT
//
// The command's own proto3 JSON printer and parser (pbjson.h), over
// protobuf reflection and over wire bytes; libprotobuf's converter settles
// what they leave to it (see pbschema.cc).
#include "pbjson.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <google/protobuf/compiler/importer.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/type.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/util/type_resolver_util.h>


namespace pb = google::protobuf;

// ---------------------------------------------------------------------
// proto3 JSON of the command's own (pbjson.h). libprotobuf 3.21's
// converter goes message -> bytes -> google.protobuf.Type protos -> JSON
// (and back), 5-10x the cost of the message itself. Here:
//  - consume: PrintWire() prints straight from the ring's bytes when they
//    are canonical proto3 (no DynamicMessage at all); else the bytes are
//    parsed (which decides whether they are a message) and Print() walks
//    the DynamicMessage through Reflection; else libprotobuf's converter;
//  - produce: Parse() turns the JSON straight into the bytes of a
//    deterministic serialization (no DynamicMessage either); anything
//    outside its strict subset, errors included, goes to libprotobuf's
//    converter, which then decides and words the refusal.
// What both printers print is what MessageToJsonString prints with
// default options (tests/check_pbjson.cc compares them byte for byte):
//  - fields in number order, those HasField() (or non-empty) only, which
//    is what serialization writes and what the converter reads back;
//  - json_name keys; 64-bit integers quoted; enums by name, unknown
//    numbers as numbers, google.protobuf.NullValue as null;
//  - doubles as SimpleDtoa (%.15g, else %.17g), floats as SimpleFtoa
//    (%.6g, else %.9g, and %.9g where glibc's strtof reports ERANGE, as
//    for subnormals), non-finite ones as "NaN", "Infinity", "-Infinity";
//    bytes as standard base64 with padding;
//  - strings escaped as util/internal/json_escaping.cc does: ", \,
//    C0 and C1 controls, DEL, < and >, and a list of invisible or
//    separator code points (U+2028...) as \uXXXX; the rest kept as UTF-8;
//  - Timestamp (0, 3, 6 or 9 fraction digits), Duration, Struct, Value,
//    ListValue, the wrappers, Empty and (Print() only) Any of a message
//    that is not a well-known type, in their special forms.
// Left to libprotobuf (the printers answer false): an Any holding a
// well-known type (rare: not worth its special forms), an Any whose
// payload would not re-serialize to the same bytes, a FieldMask, a Value
// with no kind, a Timestamp or Duration out of range (libprotobuf refuses
// them), a string that is not UTF-8, a message with unknown fields; and
// for PrintWire() also every Any, proto2 types and non-canonical bytes.
// ---------------------------------------------------------------------
namespace pbjson {

namespace {

using FD = pb::FieldDescriptor;

enum Kind {
	K_PLAIN,
	K_TIMESTAMP,
	K_DURATION,
	K_STRUCT,
	K_VALUE,
	K_LIST,
	K_WRAPPER,
	K_EMPTY,
	K_FIELDMASK,
	K_ANY,
};

Kind kind_of(const pb::Descriptor *d)
{
	const std::string &n = d->full_name();

	if (n.compare(0, 16, "google.protobuf.") != 0)
		return K_PLAIN;
	std::string s = n.substr(16);
	if (s == "Timestamp")
		return K_TIMESTAMP;
	if (s == "Duration")
		return K_DURATION;
	if (s == "Struct")
		return K_STRUCT;
	if (s == "Value")
		return K_VALUE;
	if (s == "ListValue")
		return K_LIST;
	if (s == "Empty")
		return K_EMPTY;
	if (s == "FieldMask")
		return K_FIELDMASK;
	if (s == "Any")
		return K_ANY;
	if (s == "DoubleValue" || s == "FloatValue" || s == "Int64Value" ||
	    s == "UInt64Value" || s == "Int32Value" || s == "UInt32Value" ||
	    s == "BoolValue" || s == "StringValue" || s == "BytesValue")
		return K_WRAPPER;
	return K_PLAIN;
}

struct Info {
	Kind kind;
	std::vector<const FD *> fields; // by number
	std::vector<std::string> keys;	// "jsonName": per field
	std::unordered_map<std::string_view, const FD *> names;
	bool proto3;
	std::vector<const FD *> bynum;	// by number (empty if sparse)
	std::vector<std::string> keynum; // "jsonName": by number
};

const char kHex[] = "0123456789abcdef";

void hex4(std::string &o, uint32_t u)
{
	char b[6] = {'\\', 'u', kHex[(u >> 12) & 15], kHex[(u >> 8) & 15],
		     kHex[(u >> 4) & 15], kHex[u & 15]};
	o.append(b, 6);
}

// Does code point @cp need \u escaping (json_escaping.cc's list, from
// U+00A0 on; below that a table)?
bool escape_cp(uint32_t cp)
{
	switch (cp) {
	case 0xfeff:
	case 0xfff9:
	case 0xfffa:
	case 0xfffb:
	case 0x00ad:
	case 0x06dd:
	case 0x070f:
	case 0x17b4:
	case 0x17b5:
		return true;
	default:
		return (cp >= 0x0600 && cp <= 0x0603) ||
		       (cp >= 0x200b && cp <= 0x200f) ||
		       (cp >= 0x2028 && cp <= 0x202e) ||
		       (cp >= 0x2060 && cp <= 0x2064) ||
		       (cp >= 0x206a && cp <= 0x206f) || cp == 0xe0001 ||
		       (cp >= 0x1d173 && cp <= 0x1d17a) ||
		       (cp >= 0xe0020 && cp <= 0xe007f);
	}
}

// One UTF-8 sequence at @p (< @e): its length and *cp, or 0 if invalid
// (overlong, surrogate, > U+10FFFF, truncated).
int utf8_cp(const unsigned char *p, const unsigned char *e, uint32_t *cp)
{
	unsigned c = p[0];
	int n;
	uint32_t v, min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (e - p < n)
		return 0;
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

// A JSON string as json_escaping.cc writes it; false if not UTF-8.
bool put_string(std::string &o, std::string_view s)
{
	const unsigned char *p = (const unsigned char *)s.data();
	const unsigned char *e = p + s.size();

	o.push_back('"');
	while (p < e) {
		const unsigned char *q = p;

		while (q < e && *q >= 0x20 && *q < 0x7f && *q != '"' &&
		       *q != '\\' && *q != '<' && *q != '>')
			q++;
		o.append((const char *)p, size_t(q - p));
		p = q;
		if (p == e)
			break;
		uint32_t cp;
		int n = utf8_cp(p, e, &cp);

		if (!n)
			return false;
		switch (cp) {
		case '"':
			o.append("\\\"");
			break;
		case '\\':
			o.append("\\\\");
			break;
		case '\b':
			o.append("\\b");
			break;
		case '\t':
			o.append("\\t");
			break;
		case '\n':
			o.append("\\n");
			break;
		case '\f':
			o.append("\\f");
			break;
		case '\r':
			o.append("\\r");
			break;
		default:
			if (cp < 0xa0 || escape_cp(cp)) {
				if (cp >= 0x10000) {
					uint32_t v = cp - 0x10000;

					hex4(o, 0xd800 + (v >> 10));
					hex4(o, 0xdc00 + (v & 0x3ff));
				} else {
					hex4(o, cp);
				}
			} else {
				o.append((const char *)p, size_t(n));
			}
		}
		p += n;
	}
	o.push_back('"');
	return true;
}

template <typename T> void put_int(std::string &o, T v)
{
	char b[24];
	auto r = std::to_chars(b, b + sizeof b, v);

	o.append(b, size_t(r.ptr - b));
}

// SimpleDtoa: %.15g if it reads back, else %.17g.
void put_double(std::string &o, double v)
{
	char b[40];
	auto r = std::to_chars(b, b + sizeof b, v, std::chars_format::general,
			       15);
	double back;
	auto br = std::from_chars(b, r.ptr, back);

	if (br.ec != std::errc() || back != v)
		r = std::to_chars(b, b + sizeof b, v,
				  std::chars_format::general, 17);
	o.append(b, size_t(r.ptr - b));
}

// SimpleFtoa: %.6g if it reads back as the float, else %.9g.
void put_float(std::string &o, float v)
{
	char b[40];
	auto r = std::to_chars(b, b + sizeof b, double(v),
			       std::chars_format::general, 6);
	float back;
	auto br = std::from_chars(b, r.ptr, back);
	bool ok = br.ec == std::errc() && back == v;

	// safe_strtof also fails where strtof sets errno (ERANGE: glibc's
	// for subnormal results): do as it does there.
	if (ok && v != 0 && std::fabs(v) < std::numeric_limits<float>::min()) {
		std::string t(b, size_t(r.ptr - b));
		errno = 0;
		back = strtof(t.c_str(), nullptr);
		ok = errno == 0 && back == v;
	}
	if (!ok)
		r = std::to_chars(b, b + sizeof b, double(v),
				  std::chars_format::general, 9);
	o.append(b, size_t(r.ptr - b));
}

bool put_nonfinite(std::string &o, double v)
{
	if (std::isnan(v))
		o.append("\"NaN\"");
	else if (std::isinf(v))
		o.append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
	else
		return false;
	return true;
}

const char kB64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void put_base64(std::string &o, std::string_view s)
{
	const unsigned char *p = (const unsigned char *)s.data();
	size_t n = s.size(), i = 0;

	o.push_back('"');
	for (; i + 3 <= n; i += 3) {
		uint32_t v = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8 |
			     p[i + 2];
		char b[4] = {kB64[v >> 18], kB64[(v >> 12) & 63],
			     kB64[(v >> 6) & 63], kB64[v & 63]};
		o.append(b, 4);
	}
	if (n - i == 1) {
		uint32_t v = uint32_t(p[i]) << 16;
		char b[4] = {kB64[v >> 18], kB64[(v >> 12) & 63], '=', '='};
		o.append(b, 4);
	} else if (n - i == 2) {
		uint32_t v = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8;
		char b[4] = {kB64[v >> 18], kB64[(v >> 12) & 63],
			     kB64[(v >> 6) & 63], '='};
		o.append(b, 4);
	}
	o.push_back('"');
}

// Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
void civil(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = unsigned(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = int64_t(yoe) + era * 400 + (*m <= 2);
}

int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = unsigned(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + int64_t(doe) - 719468;
}

// FormatNanos: "", or 3, 6 or 9 digits after a dot.
void put_nanos(std::string &o, int32_t nanos)
{
	if (nanos == 0)
		return;
	char b[16];
	int n;

	if (nanos % 1000000 == 0)
		n = snprintf(b, sizeof b, ".%03d", nanos / 1000000);
	else if (nanos % 1000 == 0)
		n = snprintf(b, sizeof b, ".%06d", nanos / 1000);
	else
		n = snprintf(b, sizeof b, ".%09d", nanos);
	o.append(b, size_t(n));
}

struct WV {
	// Zeroed: a length-delimited payload sets s and n only, and
	// wvalue() copies all three.
	uint64_t u = 0;
	const uint8_t *s = nullptr;
	size_t n = 0;
};

const int64_t kTsMin = -62135596800LL, kTsMax = 253402300799LL;
const int64_t kDurMax = 315576000000LL;

} // namespace

struct Codec::Impl {
	pb::MessageFactory *factory;
	std::unordered_map<const pb::Descriptor *, std::unique_ptr<Info>> infos;
	std::string scratch, key;
	// parser state: the text left
	const char *p = nullptr, *e = nullptr;

	const Info &info(const pb::Descriptor *d)
	{
		auto it = infos.find(d);

		if (it != infos.end())
			return *it->second;
		std::unique_ptr<Info> in(new Info);
		in->kind = kind_of(d);
		for (int i = 0; i < d->field_count(); i++)
			in->fields.push_back(d->field(i));
		std::sort(in->fields.begin(), in->fields.end(),
			  [](const FD *a, const FD *b) {
				  return a->number() < b->number();
			  });
		for (const FD *f : in->fields) {
			in->keys.push_back("\"" + f->json_name() + "\":");
			in->names.emplace(f->json_name(), f);
			in->names.emplace(f->name(), f);
		}
		in->proto3 = d->file()->syntax() ==
			     pb::FileDescriptor::SYNTAX_PROTO3;
		int max = in->fields.empty() ? 0 : in->fields.back()->number();
		if (max <= 4096) {
			in->bynum.assign(size_t(max) + 1, nullptr);
			in->keynum.resize(size_t(max) + 1);
			for (size_t i = 0; i < in->fields.size(); i++) {
				size_t n = size_t(in->fields[i]->number());
				in->bynum[n] = in->fields[i];
				in->keynum[n] = in->keys[i];
			}
		}
		return *infos.emplace(d, std::move(in)).first->second;
	}

	// ---- printer ----
	bool message(std::string &o, const pb::Message &m);
	bool fields(std::string &o, const pb::Message &m, const Info &in,
		    bool first);
	bool value(std::string &o, const pb::Message &m, const FD *f, int i);
	bool map_key(std::string &o, const pb::Message &entry, const FD *f);
	bool timestamp(std::string &o, const pb::Message &m);
	bool duration(std::string &o, const pb::Message &m);
	bool struct_value(std::string &o, const pb::Message &m);
	bool any(std::string &o, const pb::Message &m);

	bool put_timestamp(std::string &o, int64_t s, int32_t n);
	bool put_duration(std::string &o, int64_t s, int32_t n);
	// ---- printer from wire bytes ----
	bool wmsg(std::string &o, const pb::Descriptor *d, const uint8_t *p,
		  const uint8_t *e, int k);
	bool wvalue(std::string &o, const FD *f, const WV &v, int k);
	bool wmap(std::string &o, const FD *f, int wt, const uint8_t *&p,
		  const uint8_t *e, int k);

	// ---- parser ----
	void ws()
	{
		while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' ||
				 *p == '\r'))
			p++;
	}
	bool eat(char c)
	{
		ws();
		if (p < e && *p == c) {
			p++;
			return true;
		}
		return false;
	}
	bool peek(char c)
	{
		ws();
		return p < e && *p == c;
	}
	bool lit(const char *w, size_t n)
	{
		if (size_t(e - p) >= n && memcmp(p, w, n) == 0) {
			p += n;
			return true;
		}
		return false;
	}
	bool string(std::string *out);
	bool number(const char **b, const char **end, bool *integral);
	bool object(const pb::Descriptor *d, int k, std::string &out);
	bool field(const FD *f, int k, std::string &b);
	bool element(const FD *f, int k, std::string &b, bool always);
	bool scalar_raw(const FD *f, uint64_t *raw);
	void put_payload(std::string &b, const FD *f, uint64_t raw);
	bool wkt(const pb::Descriptor *d, Kind kd, int k, std::string &out);
	bool map(const FD *f, int k, std::string &b);
	bool flush_map(int k, const FD *kf, std::string &b);
	bool struct_body(int k, std::string &out);
	bool list_body(int k, std::string &out);
	bool json_value(int k, std::string &out);

	// per nesting level: a message's fields before sorting, a map's
	// entries, the body of a sub-message
	struct Seg {
		int num;
		size_t b, e;
	};
	struct MKey {
		uint64_t i;
		size_t sb, sl, b, e;
	};
	struct Level {
		std::string buf, res, ent, mapbuf, keytext, pk;
		std::vector<Seg> segs;
		std::vector<MKey> mkeys;
		std::vector<const FD *> seen;
		std::vector<std::pair<uint64_t, std::string_view>> wkeys;
	};
	MKey map_key(Level &L);
	void map_entry(Level &L, MKey &mk, int num);
	static const int kMaxDepth = 64;
	std::vector<Level> lv = std::vector<Level>(kMaxDepth + 3);
	std::string sval;
};

// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::message(std::string &o, const pb::Message &m)
{
	const Info &in = info(m.GetDescriptor());

	// Unknown fields go through the converter's binary round trip, and
	// are printed where their number is a known field's (a proto2 enum's
	// unknown value): leave those messages to it.
	if (!m.GetReflection()->GetUnknownFields(m).empty())
		return false;
	switch (in.kind) {
	case K_PLAIN:
	case K_EMPTY:
		o.push_back('{');
		if (!fields(o, m, in, true))
			return false;
		o.push_back('}');
		return true;
	case K_TIMESTAMP:
		return timestamp(o, m);
	case K_DURATION:
		return duration(o, m);
	case K_STRUCT:
		return struct_value(o, m);
	case K_VALUE: {
		const pb::Reflection *r = m.GetReflection();
		const FD *f = r->GetOneofFieldDescriptor(
			m, m.GetDescriptor()->oneof_decl(0));

		if (!f)
			return false; // no kind: libprotobuf's own way
		return value(o, m, f, -1);
	}
	case K_LIST: {
		const pb::Reflection *r = m.GetReflection();
		const FD *f = in.fields[0];
		int n = r->FieldSize(m, f);

		o.push_back('[');
		for (int i = 0; i < n; i++) {
			if (i)
				o.push_back(',');
			if (!message(o, r->GetRepeatedMessage(m, f, i)))
				return false;
		}
		o.push_back(']');
		return true;
	}
	case K_WRAPPER:
		return value(o, m, in.fields[0], -1);
	case K_ANY:
		return any(o, m);
	case K_FIELDMASK:
		return false;
	}
	return false;
}

// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::fields(std::string &o, const pb::Message &m, const Info &in,
			 bool first)
{
	const pb::Reflection *r = m.GetReflection();

	for (size_t k = 0; k < in.fields.size(); k++) {
		const FD *f = in.fields[k];

		if (f->is_repeated()) {
			int n = r->FieldSize(m, f);

			if (n == 0)
				continue;
			if (!first)
				o.push_back(',');
			first = false;
			o.append(in.keys[k]);
			if (f->is_map()) {
				const pb::Descriptor *ed = f->message_type();
				const FD *kf = ed->map_key();
				const FD *vf = ed->map_value();

				o.push_back('{');
				for (int i = 0; i < n; i++) {
					const pb::Message &en =
						r->GetRepeatedMessage(m, f, i);

					if (i)
						o.push_back(',');
					if (!map_key(o, en, kf))
						return false;
					o.push_back(':');
					if (!value(o, en, vf, -1))
						return false;
				}
				o.push_back('}');
				continue;
			}
			o.push_back('[');
			for (int i = 0; i < n; i++) {
				if (i)
					o.push_back(',');
				if (!value(o, m, f, i))
					return false;
			}
			o.push_back(']');
			continue;
		}
		if (!r->HasField(m, f))
			continue;
		if (!first)
			o.push_back(',');
		first = false;
		o.append(in.keys[k]);
		if (!value(o, m, f, -1))
			return false;
	}
	return true;
}

bool Codec::Impl::map_key(std::string &o, const pb::Message &en, const FD *f)
{
	const pb::Reflection *r = en.GetReflection();

	switch (f->cpp_type()) {
	case FD::CPPTYPE_STRING:
		return put_string(o, r->GetStringReference(en, f, &scratch));
	case FD::CPPTYPE_BOOL:
		o.append(r->GetBool(en, f) ? "\"true\"" : "\"false\"");
		return true;
	case FD::CPPTYPE_INT32:
		o.push_back('"');
		put_int(o, r->GetInt32(en, f));
		break;
	case FD::CPPTYPE_INT64:
		o.push_back('"');
		put_int(o, r->GetInt64(en, f));
		break;
	case FD::CPPTYPE_UINT32:
		o.push_back('"');
		put_int(o, r->GetUInt32(en, f));
		break;
	case FD::CPPTYPE_UINT64:
		o.push_back('"');
		put_int(o, r->GetUInt64(en, f));
		break;
	default:
		return false;
	}
	o.push_back('"');
	return true;
}

// Field @f of @m (element @i if repeated, else -1) as a JSON value.
// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::value(std::string &o, const pb::Message &m, const FD *f,
			int i)
{
	const pb::Reflection *r = m.GetReflection();
	bool rep = i >= 0;

	switch (f->cpp_type()) {
	case FD::CPPTYPE_INT32:
		put_int(o, rep ? r->GetRepeatedInt32(m, f, i)
			       : r->GetInt32(m, f));
		return true;
	case FD::CPPTYPE_UINT32:
		put_int(o, rep ? r->GetRepeatedUInt32(m, f, i)
			       : r->GetUInt32(m, f));
		return true;
	case FD::CPPTYPE_INT64:
		o.push_back('"');
		put_int(o, rep ? r->GetRepeatedInt64(m, f, i)
			       : r->GetInt64(m, f));
		o.push_back('"');
		return true;
	case FD::CPPTYPE_UINT64:
		o.push_back('"');
		put_int(o, rep ? r->GetRepeatedUInt64(m, f, i)
			       : r->GetUInt64(m, f));
		o.push_back('"');
		return true;
	case FD::CPPTYPE_DOUBLE: {
		double v = rep ? r->GetRepeatedDouble(m, f, i)
			       : r->GetDouble(m, f);

		if (!put_nonfinite(o, v))
			put_double(o, v);
		return true;
	}
	case FD::CPPTYPE_FLOAT: {
		float v = rep ? r->GetRepeatedFloat(m, f, i)
			      : r->GetFloat(m, f);

		if (!put_nonfinite(o, double(v)))
			put_float(o, v);
		return true;
	}
	case FD::CPPTYPE_BOOL:
		o.append((rep ? r->GetRepeatedBool(m, f, i) : r->GetBool(m, f))
				 ? "true"
				 : "false");
		return true;
	case FD::CPPTYPE_ENUM: {
		int v = rep ? r->GetRepeatedEnumValue(m, f, i)
			    : r->GetEnumValue(m, f);
		const pb::EnumDescriptor *ed = f->enum_type();

		if (ed->full_name() == "google.protobuf.NullValue") {
			o.append("null");
			return true;
		}
		const pb::EnumValueDescriptor *ev = ed->FindValueByNumber(v);

		if (ev)
			return put_string(o, ev->name());
		put_int(o, v);
		return true;
	}
	case FD::CPPTYPE_STRING: {
		const std::string &s =
			rep ? r->GetRepeatedStringReference(m, f, i, &scratch)
			    : r->GetStringReference(m, f, &scratch);

		if (f->type() == FD::TYPE_BYTES) {
			put_base64(o, s);
			return true;
		}
		return put_string(o, s);
	}
	case FD::CPPTYPE_MESSAGE:
		return message(o, rep ? r->GetRepeatedMessage(m, f, i)
				      : r->GetMessage(m, f));
	}
	return false;
}

bool Codec::Impl::timestamp(std::string &o, const pb::Message &m)
{
	const pb::Reflection *r = m.GetReflection();
	const Info &in = info(m.GetDescriptor());

	return put_timestamp(o, r->GetInt64(m, in.fields[0]),
			     r->GetInt32(m, in.fields[1]));
}

bool Codec::Impl::put_timestamp(std::string &o, int64_t s, int32_t n)
{
	if (s < kTsMin || s > kTsMax || n < 0 || n > 999999999)
		return false;
	int64_t days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
	int64_t sod = s - days * 86400, y;
	unsigned mo, d;
	char b[40];

	civil(days, &y, &mo, &d);
	int k = snprintf(b, sizeof b, "\"%04d-%02u-%02uT%02d:%02d:%02d", int(y),
			 mo, d, int(sod / 3600), int(sod / 60 % 60),
			 int(sod % 60));
	o.append(b, size_t(k));
	put_nanos(o, n);
	o.append("Z\"");
	return true;
}

bool Codec::Impl::duration(std::string &o, const pb::Message &m)
{
	const pb::Reflection *r = m.GetReflection();
	const Info &in = info(m.GetDescriptor());

	return put_duration(o, r->GetInt64(m, in.fields[0]),
			    r->GetInt32(m, in.fields[1]));
}

bool Codec::Impl::put_duration(std::string &o, int64_t s, int32_t n)
{
	if (s < -kDurMax || s > kDurMax || n <= -1000000000 ||
	    n >= 1000000000 || (s < 0 && n > 0) || (s > 0 && n < 0))
		return false;
	o.push_back('"');
	if (s < 0 || n < 0) {
		o.push_back('-');
		s = -s;
		n = -n;
	}
	put_int(o, s);
	put_nanos(o, n);
	o.append("s\"");
	return true;
}

// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::struct_value(std::string &o, const pb::Message &m)
{
	const pb::Reflection *r = m.GetReflection();
	const FD *f = info(m.GetDescriptor()).fields[0];
	const FD *kf = f->message_type()->map_key();
	const FD *vf = f->message_type()->map_value();
	int n = r->FieldSize(m, f);

	o.push_back('{');
	for (int i = 0; i < n; i++) {
		const pb::Message &en = r->GetRepeatedMessage(m, f, i);

		if (i)
			o.push_back(',');
		if (!map_key(o, en, kf))
			return false;
		o.push_back(':');
		if (!value(o, en, vf, -1))
			return false;
	}
	o.push_back('}');
	return true;
}

// An Any of an ordinary message: {"@type":URL, its fields...}. The
// converter prints the payload's fields in the order of its bytes: take
// only payloads that re-serialize to the same bytes, leave the rest.
// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::any(std::string &o, const pb::Message &m)
{
	const pb::Reflection *r = m.GetReflection();
	const Info &in = info(m.GetDescriptor());
	std::string url = r->GetString(m, in.fields[0]);
	std::string bytes = r->GetString(m, in.fields[1]);

	if (url.empty()) {
		if (!bytes.empty())
			return false;
		o.append("{}");
		return true;
	}
	size_t slash = url.rfind('/');
	if (slash == std::string::npos)
		return false;
	const pb::Descriptor *d = m.GetDescriptor()->file()->pool()
					  ->FindMessageTypeByName(
						  url.substr(slash + 1));
	if (!d || info(d).kind != K_PLAIN)
		return false; // a well-known type inside: libprotobuf's
	std::unique_ptr<pb::Message> pl(factory->GetPrototype(d)->New());
	if (!pl->ParseFromString(bytes) || pl->SerializeAsString() != bytes)
		return false;
	o.append("{\"@type\":");
	if (!put_string(o, url))
		return false;
	if (!fields(o, *pl, info(d), false))
		return false;
	o.push_back('}');
	return true;
}

// ---------------------------------------------------------------------
// The parser: strict RFC 8259 JSON, the proto3 mapping's common forms.
// Anything else answers false and goes to JsonStringToMessage, which
// then decides (and words the error): non-canonical numbers ("01",
// "1.0" or "1e2" for an integer, "-0", a number in a string for a
// float), integers a double cannot hold exactly, a field given twice,
// two members of a oneof, null in a oneof, an array or a map value,
// unknown fields and enum names, Any, FieldMask, Timestamps other than
// YYYY-MM-DDTHH:MM:SS[.fraction]Z, invalid UTF-8, nesting deeper than
// 64.
// ---------------------------------------------------------------------
namespace {

// -?(0|[1-9][0-9]*) in [b, end), not "-0": *neg and *mag.
bool int_text(const char *b, const char *end, bool *neg, uint64_t *mag)
{
	*neg = b < end && *b == '-';
	if (*neg)
		b++;
	if (b == end || (*b == '0' && end - b > 1) || (*neg && *b == '0'))
		return false;
	for (const char *q = b; q < end; q++)
		if (*q < '0' || *q > '9')
			return false;
	auto r = std::from_chars(b, end, *mag);
	return r.ec == std::errc() && r.ptr == end;
}

int b64_val(char c, bool *std_alpha, bool *url_alpha)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '/') {
		*std_alpha = true;
		return c == '+' ? 62 : 63;
	}
	if (c == '-' || c == '_') {
		*url_alpha = true;
		return c == '-' ? 62 : 63;
	}
	return -1;
}

// Standard or URL-safe base64, padded or not, no stray bits.
bool unbase64(const std::string &s, std::string *out)
{
	size_t n = s.size(), pad = 0;
	bool sa = false, ua = false;

	while (n && s[n - 1] == '=' && pad < 2)
		n--, pad++;
	if ((pad && (n + pad) % 4) || n % 4 == 1)
		return false;
	out->clear();
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_val(s[i], &sa, &ua);

		if (v < 0)
			return false;
		acc = (acc << 6) | uint32_t(v);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out->push_back(char((acc >> bits) & 0xff));
		}
	}
	return !(sa && ua) && (acc & ((1u << bits) - 1)) == 0;
}

bool digits(const char *p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v = *v * 10 + (p[i] - '0');
	}
	return true;
}

// ".d{1,9}" at @p (< @e): nanos, and *p past it; none is 0.
bool fraction(const char **pp, const char *e, int32_t *nanos)
{
	const char *p = *pp;

	*nanos = 0;
	if (p >= e || *p != '.')
		return true;
	p++;
	int n = 0;
	for (; p < e && *p >= '0' && *p <= '9'; p++, n++) {
		if (n == 9)
			return false; // more than nanoseconds
		*nanos = *nanos * 10 + (*p - '0');
	}
	if (n == 0)
		return false;
	for (; n < 9; n++)
		*nanos *= 10;
	*pp = p;
	return true;
}

bool parse_timestamp(const std::string &s, int64_t *secs, int32_t *nanos)
{
	const char *p = s.data(), *e = p + s.size();
	int y, mo, d, h, mi, se;

	if (s.size() < 20 || !digits(p, 4, &y) || p[4] != '-' ||
	    !digits(p + 5, 2, &mo) || p[7] != '-' || !digits(p + 8, 2, &d) ||
	    p[10] != 'T' || !digits(p + 11, 2, &h) || p[13] != ':' ||
	    !digits(p + 14, 2, &mi) || p[16] != ':' || !digits(p + 17, 2, &se))
		return false;
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || se > 59)
		return false;
	p += 19;
	if (!fraction(&p, e, nanos) || p + 1 != e || *p != 'Z')
		return false;
	*secs = days_from_civil(y, unsigned(mo), unsigned(d)) * 86400 +
		int64_t(h) * 3600 + int64_t(mi) * 60 + se;
	return true;
}

bool parse_duration(const std::string &s, int64_t *secs, int32_t *nanos)
{
	const char *p = s.data(), *e = p + s.size();
	bool neg = p < e && *p == '-';
	uint64_t mag;

	if (neg)
		p++;
	const char *b = p;
	while (p < e && *p >= '0' && *p <= '9')
		p++;
	if (p == b || (*b == '0' && p - b > 1))
		return false;
	auto r = std::from_chars(b, p, mag);
	if (r.ec != std::errc() || mag > uint64_t(kDurMax))
		return false;
	if (!fraction(&p, e, nanos) || p + 1 != e || *p != 's')
		return false;
	if (neg && mag == 0 && *nanos == 0)
		return false;
	*secs = neg ? -int64_t(mag) : int64_t(mag);
	if (neg)
		*nanos = -*nanos;
	return true;
}

void put_utf8(std::string *o, uint32_t cp)
{
	if (cp < 0x80) {
		o->push_back(char(cp));
	} else if (cp < 0x800) {
		o->push_back(char(0xc0 | (cp >> 6)));
		o->push_back(char(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		o->push_back(char(0xe0 | (cp >> 12)));
		o->push_back(char(0x80 | ((cp >> 6) & 0x3f)));
		o->push_back(char(0x80 | (cp & 0x3f)));
	} else {
		o->push_back(char(0xf0 | (cp >> 18)));
		o->push_back(char(0x80 | ((cp >> 12) & 0x3f)));
		o->push_back(char(0x80 | ((cp >> 6) & 0x3f)));
		o->push_back(char(0x80 | (cp & 0x3f)));
	}
}

bool hex4_in(const char *p, const char *e, uint32_t *u)
{
	if (e - p < 4)
		return false;
	*u = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int v = c >= '0' && c <= '9'	 ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (v < 0)
			return false;
		*u = *u << 4 | uint32_t(v);
	}
	return true;
}

const double kExact53 = 9007199254740992.0; // 2^53

} // namespace

bool Codec::Impl::string(std::string *out)
{
	ws();
	if (p >= e || *p != '"')
		return false;
	p++;
	out->clear();
	for (;;) {
		const char *q = p;

		while (q < e && *q != '"' && *q != '\\' &&
		       (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x80)
			q++;
		out->append(p, size_t(q - p));
		p = q;
		if (p >= e)
			return false;
		unsigned char c = (unsigned char)*p;
		if (c == '"') {
			p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c >= 0x80) {
			uint32_t cp;
			int n = utf8_cp((const unsigned char *)p,
					(const unsigned char *)e, &cp);

			if (!n)
				return false;
			out->append(p, size_t(n));
			p += n;
			continue;
		}
		if (++p >= e)
			return false;
		switch (*p++) {
		case '"':
			out->push_back('"');
			break;
		case '\\':
			out->push_back('\\');
			break;
		case '/':
			out->push_back('/');
			break;
		case 'b':
			out->push_back('\b');
			break;
		case 'f':
			out->push_back('\f');
			break;
		case 'n':
			out->push_back('\n');
			break;
		case 'r':
			out->push_back('\r');
			break;
		case 't':
			out->push_back('\t');
			break;
		case 'u': {
			uint32_t u, lo;

			if (!hex4_in(p, e, &u))
				return false;
			p += 4;
			if (u >= 0xdc00 && u <= 0xdfff)
				return false;
			if (u >= 0xd800 && u <= 0xdbff) {
				if (e - p < 6 || p[0] != '\\' || p[1] != 'u' ||
				    !hex4_in(p + 2, e, &lo) || lo < 0xdc00 ||
				    lo > 0xdfff)
					return false;
				p += 6;
				u = 0x10000 + ((u - 0xd800) << 10) +
				    (lo - 0xdc00);
			}
			put_utf8(out, u);
			break;
		}
		default:
			return false;
		}
	}
}

// A JSON number token at p: [*b, *end), *integral if no fraction or
// exponent.
bool Codec::Impl::number(const char **b, const char **end, bool *integral)
{
	ws();
	const char *q = p;

	*b = q;
	if (q < e && *q == '-')
		q++;
	if (q >= e || *q < '0' || *q > '9')
		return false;
	if (*q == '0')
		q++;
	else
		while (q < e && *q >= '0' && *q <= '9')
			q++;
	*integral = true;
	if (q < e && *q == '.') {
		*integral = false;
		const char *d = ++q;
		while (q < e && *q >= '0' && *q <= '9')
			q++;
		if (q == d)
			return false;
	}
	if (q < e && (*q == 'e' || *q == 'E')) {
		*integral = false;
		q++;
		if (q < e && (*q == '+' || *q == '-'))
			q++;
		const char *d = q;
		while (q < e && *q >= '0' && *q <= '9')
			q++;
		if (q == d)
			return false;
	}
	// a number runs into the next token only through a delimiter
	if (q < e && !strchr(" \t\r\n,}]", *q))
		return false;
	*end = q;
	p = q;
	return true;
}

// ---- the parser's output: canonical wire bytes ----
// What JsonStringToMessage then a deterministic serialization would
// give: fields in number order, implicit-presence fields at their default
// left out, packed repeated scalars, map entries sorted by key with key
// and value always written.
namespace {

int wire_type(const FD *f)
{
	switch (f->type()) {
	case FD::TYPE_FIXED64:
	case FD::TYPE_SFIXED64:
	case FD::TYPE_DOUBLE:
		return 1;
	case FD::TYPE_STRING:
	case FD::TYPE_BYTES:
	case FD::TYPE_MESSAGE:
	case FD::TYPE_GROUP:
		return 2;
	case FD::TYPE_FIXED32:
	case FD::TYPE_SFIXED32:
	case FD::TYPE_FLOAT:
		return 5;
	default:
		return 0;
	}
}

void put_varint(std::string &b, uint64_t v)
{
	char t[10];
	int n = 0;

	while (v >= 0x80) {
		t[n++] = char(v | 0x80);
		v >>= 7;
	}
	t[n++] = char(v);
	b.append(t, size_t(n));
}

void put_tag(std::string &b, int num, int wt)
{
	put_varint(b, uint64_t(num) << 3 | uint64_t(wt));
}

// @v as the length-delimited field @num.
void put_bytes(std::string &b, int num, const std::string &v)
{
	put_tag(b, num, 2);
	put_varint(b, v.size());
	b.append(v);
}

void put_fixed(std::string &b, uint64_t v, int bytes)
{
	char t[8];

	for (int i = 0; i < bytes; i++)
		t[i] = char(v >> (8 * i));
	b.append(t, size_t(bytes));
}

// A 64-bit two's complement value of field @f's type to its raw wire
// payload (zigzag for sint, low 32 bits for 32-bit fixed).
uint64_t wire_raw(const FD *f, uint64_t v)
{
	switch (f->type()) {
	case FD::TYPE_SINT32: {
		int32_t x = int32_t(v);
		// The sign, spread over all bits with unsigned arithmetic: a
		// right shift of a negative int is implementation-defined.
		return uint32_t((uint32_t(x) << 1) ^ (0u - (uint32_t(x) >> 31)));
	}
	case FD::TYPE_SINT64: {
		int64_t x = int64_t(v);
		return (uint64_t(x) << 1) ^ (uint64_t(0) - (uint64_t(x) >> 63));
	}
	case FD::TYPE_FIXED32:
	case FD::TYPE_SFIXED32:
	case FD::TYPE_UINT32:
		return uint32_t(v);
	default:
		return v;
	}
}

// Range check of an integer for @f's C++ type: its 64-bit two's
// complement value (int32 sign-extended).
bool int_value(const FD *f, bool neg, uint64_t mag, uint64_t *v)
{
	switch (f->cpp_type()) {
	case FD::CPPTYPE_INT32:
	case FD::CPPTYPE_ENUM:
		if (mag > (neg ? 0x80000000ull : 0x7fffffffull))
			return false;
		break;
	case FD::CPPTYPE_INT64:
		if (mag > (neg ? 0x8000000000000000ull : 0x7fffffffffffffffull))
			return false;
		break;
	case FD::CPPTYPE_UINT32:
		if (neg || mag > 0xffffffffull)
			return false;
		break;
	case FD::CPPTYPE_UINT64:
		if (neg)
			return false;
		break;
	default:
		return false;
	}
	*v = neg ? 0 - mag : mag;
	return true;
}

} // namespace

// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::object(const pb::Descriptor *d, int k, std::string &out)
{
	if (k > kMaxDepth || !eat('{'))
		return false;
	Level &L = lv[size_t(k)];
	const Info &in = info(d);

	L.buf.clear();
	L.segs.clear();
	L.seen.clear();
	if (!eat('}')) {
		for (;;) {
			if (!string(&key))
				return false;
			auto it = in.names.find(key);
			if (it == in.names.end())
				return false;
			const FD *f = it->second;
			const pb::OneofDescriptor *o = f->containing_oneof();
			for (const FD *s : L.seen)
				if (s == f || (o && s->containing_oneof() == o))
					return false;
			L.seen.push_back(f);
			if (!eat(':'))
				return false;
			size_t b = L.buf.size();
			if (!field(f, k, L.buf))
				return false;
			if (L.buf.size() != b)
				L.segs.push_back(
					{f->number(), b, L.buf.size()});
			if (eat(','))
				continue;
			if (eat('}'))
				break;
			return false;
		}
	}
	for (size_t i = 1; i < L.segs.size(); i++)
		for (size_t j = i; j > 0 && L.segs[j - 1].num > L.segs[j].num;
		     j--)
			std::swap(L.segs[j - 1], L.segs[j]);
	for (const Seg &s : L.segs)
		out.append(L.buf, s.b, s.e - s.b);
	return true;
}

// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::field(const FD *f, int k, std::string &b)
{
	if (peek('n')) {
		if (!lit("null", 4) || f->containing_oneof())
			return false;
		if (!f->is_repeated() && f->cpp_type() == FD::CPPTYPE_MESSAGE &&
		    info(f->message_type()).kind == K_VALUE) {
			put_tag(b, f->number(), 2);
			b.append("\x02\x08\x00", 3); // {null_value: 0}
		}
		return true; // null: the default
	}
	if (f->is_map())
		return map(f, k, b);
	if (!f->is_repeated())
		return element(f, k, b, false);
	if (!eat('['))
		return false;
	bool packed = f->is_packed();
	std::string &pk = lv[size_t(k)].pk;
	pk.clear();
	if (!eat(']')) {
		for (;;) {
			if (packed) {
				uint64_t raw;

				if (!scalar_raw(f, &raw))
					return false;
				put_payload(pk, f, raw);
			} else if (!element(f, k, b, true)) {
				return false;
			}
			if (eat(','))
				continue;
			if (eat(']'))
				break;
			return false;
		}
	}
	if (packed && !pk.empty()) {
		put_bytes(b, f->number(), pk);
	}
	return true;
}

void Codec::Impl::put_payload(std::string &b, const FD *f, uint64_t raw)
{
	switch (wire_type(f)) {
	case 0:
		put_varint(b, raw);
		break;
	case 1:
		put_fixed(b, raw, 8);
		break;
	case 5:
		put_fixed(b, raw, 4);
		break;
	default:
		put_varint(b, sval.size());
		b.append(sval);
	}
}

// One value of @f (an element if @always, else the field, left out if
// it has no presence and is at its default) with its tag.
// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::element(const FD *f, int k, std::string &b, bool always)
{
	if (f->cpp_type() == FD::CPPTYPE_MESSAGE) {
		const pb::Descriptor *d = f->message_type();
		Kind kk = info(d).kind;
		std::string &r = lv[size_t(k) + 1].res;

		r.clear();
		if (!(kk == K_PLAIN || kk == K_EMPTY ? object(d, k + 1, r)
						     : wkt(d, kk, k + 1, r)))
			return false;
		put_bytes(b, f->number(), r);
		return true;
	}
	uint64_t raw;

	if (!scalar_raw(f, &raw))
		return false;
	if (!always && !f->has_presence() &&
	    (f->cpp_type() == FD::CPPTYPE_STRING ? sval.empty() : raw == 0))
		return true;
	put_tag(b, f->number(), wire_type(f));
	put_payload(b, f, raw);
	return true;
}

// A JSON scalar as field @f's raw payload (strings in sval).
bool Codec::Impl::scalar_raw(const FD *f, uint64_t *raw)
{
	const char *b, *end;
	bool integral, neg;
	uint64_t mag, v;

	ws();
	if (p >= e)
		return false;
	switch (f->cpp_type()) {
	case FD::CPPTYPE_INT32:
	case FD::CPPTYPE_INT64:
	case FD::CPPTYPE_UINT32:
	case FD::CPPTYPE_UINT64:
		if (*p == '"') {
			if (!string(&scratch) ||
			    !int_text(scratch.data(),
				      scratch.data() + scratch.size(), &neg,
				      &mag))
				return false;
		} else if (!number(&b, &end, &integral) || !integral ||
			   !int_text(b, end, &neg, &mag)) {
			return false;
		}
		if (!int_value(f, neg, mag, &v))
			return false;
		*raw = wire_raw(f, v);
		return true;
	case FD::CPPTYPE_DOUBLE:
	case FD::CPPTYPE_FLOAT: {
		double x;
		bool isf = f->cpp_type() == FD::CPPTYPE_FLOAT;

		if (*p == '"') {
			if (!string(&scratch))
				return false;
			if (scratch == "NaN")
				x = std::numeric_limits<double>::quiet_NaN();
			else if (scratch == "Infinity")
				x = std::numeric_limits<double>::infinity();
			else if (scratch == "-Infinity")
				x = -std::numeric_limits<double>::infinity();
			else
				return false;
		} else {
			if (!number(&b, &end, &integral))
				return false;
			if (integral) {
				if (!int_text(b, end, &neg, &mag) ||
				    mag > (isf ? (1ull << 24) : (1ull << 53)))
					return false;
				x = neg ? -double(mag) : double(mag);
			} else {
				auto res = std::from_chars(b, end, x);
				if (res.ec != std::errc() || res.ptr != end ||
				    !std::isfinite(x))
					return false;
				if (isf && std::fabs(x) >
						   std::numeric_limits<
							   float>::max())
					return false;
			}
		}
		if (isf) {
			float y = float(x);
			uint32_t u;

			memcpy(&u, &y, 4);
			*raw = u;
		} else {
			memcpy(raw, &x, 8);
		}
		return true;
	}
	case FD::CPPTYPE_BOOL:
		if (lit("true", 4))
			*raw = 1;
		else if (lit("false", 5))
			*raw = 0;
		else
			return false;
		return true;
	case FD::CPPTYPE_ENUM: {
		const pb::EnumDescriptor *ed = f->enum_type();
		int32_t n;

		if (*p == '"') {
			if (!string(&scratch))
				return false;
			const pb::EnumValueDescriptor *ev =
				ed->FindValueByName(scratch);
			if (!ev)
				return false;
			n = ev->number();
		} else {
			if (!number(&b, &end, &integral) || !integral ||
			    !int_text(b, end, &neg, &mag) ||
			    !int_value(f, neg, mag, &v))
				return false;
			n = int32_t(v);
			if (!ed->FindValueByNumber(n) &&
			    ed->file()->syntax() !=
				    pb::FileDescriptor::SYNTAX_PROTO3)
				return false;
		}
		*raw = uint64_t(int64_t(n));
		return true;
	}
	case FD::CPPTYPE_STRING:
		if (f->type() == FD::TYPE_BYTES) {
			if (!string(&scratch) || !unbase64(scratch, &sval))
				return false;
		} else if (!string(&sval)) {
			return false;
		}
		*raw = 0;
		return true;
	case FD::CPPTYPE_MESSAGE:
		break;
	}
	return false;
}

bool Codec::Impl::wkt(const pb::Descriptor *d, Kind kd, int k,
		      std::string &out)
{
	const Info &in = info(d);
	int64_t secs;
	int32_t nanos;
	uint64_t raw;

	if (k > kMaxDepth)
		return false;
	switch (kd) {
	case K_TIMESTAMP:
	case K_DURATION:
		if (!string(&scratch) ||
		    !(kd == K_TIMESTAMP
			      ? parse_timestamp(scratch, &secs, &nanos)
			      : parse_duration(scratch, &secs, &nanos)))
			return false;
		if (secs) {
			put_tag(out, 1, 0);
			put_varint(out, uint64_t(secs));
		}
		if (nanos) {
			put_tag(out, 2, 0);
			put_varint(out, uint64_t(int64_t(nanos)));
		}
		return true;
	case K_WRAPPER: {
		const FD *f = in.fields[0];

		if (peek('n') || peek('{') || !scalar_raw(f, &raw))
			return false;
		if (f->cpp_type() == FD::CPPTYPE_STRING ? sval.empty()
							: raw == 0)
			return true;
		put_tag(out, 1, wire_type(f));
		put_payload(out, f, raw);
		return true;
	}
	case K_STRUCT:
		return struct_body(k, out);
	case K_VALUE:
		return json_value(k, out);
	case K_LIST:
		return list_body(k, out);
	default:
		return false; // Any, FieldMask: libprotobuf's
	}
}

// Sort a map's entries (lv[k].mkeys over lv[k].mapbuf) by key, refuse
// a repeated key, and append them to @b.
bool Codec::Impl::flush_map(int k, const FD *kf, std::string &b)
{
	Level &L = lv[size_t(k)];
	const char *kt = L.keytext.data();
	FD::CppType ct = kf ? kf->cpp_type() : FD::CPPTYPE_STRING;
	auto less = [&](const MKey &x, const MKey &y) {
		switch (ct) {
		case FD::CPPTYPE_STRING:
			return std::string_view(kt + x.sb, x.sl) <
			       std::string_view(kt + y.sb, y.sl);
		case FD::CPPTYPE_INT32:
		case FD::CPPTYPE_INT64:
			return int64_t(x.i) < int64_t(y.i);
		default:
			return x.i < y.i;
		}
	};

	if (L.mkeys.size() > 1) {
		std::sort(L.mkeys.begin(), L.mkeys.end(), less);
		for (size_t i = 1; i < L.mkeys.size(); i++)
			if (!less(L.mkeys[i - 1], L.mkeys[i]))
				return false;
	}
	for (const MKey &m : L.mkeys)
		b.append(L.mapbuf, m.b, m.e - m.b);
	return true;
}

// Record the key just read (in key) for sorting, and start its entry.
Codec::Impl::MKey Codec::Impl::map_key(Level &L)
{
	MKey mk{};

	mk.sb = L.keytext.size();
	mk.sl = key.size();
	L.keytext.append(key);
	L.ent.clear();
	return mk;
}

// Append the finished entry L.ent as field @num of L.mapbuf, and keep
// its span with its key.
void Codec::Impl::map_entry(Level &L, MKey &mk, int num)
{
	mk.b = L.mapbuf.size();
	put_bytes(L.mapbuf, num, L.ent);
	mk.e = L.mapbuf.size();
	L.mkeys.push_back(mk);
}

// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::map(const FD *f, int k, std::string &b)
{
	const FD *kf = f->message_type()->map_key();
	const FD *vf = f->message_type()->map_value();
	Level &L = lv[size_t(k)];

	L.mapbuf.clear();
	L.mkeys.clear();
	L.keytext.clear();
	if (!eat('{'))
		return false;
	if (!eat('}')) {
		for (;;) {
			if (!string(&key))
				return false;
			MKey mk = map_key(L);
			bool neg;
			uint64_t mag, v = 0;

			switch (kf->cpp_type()) {
			case FD::CPPTYPE_STRING:
				put_bytes(L.ent, 1, key);
				break;
			case FD::CPPTYPE_BOOL:
				if (key != "true" && key != "false")
					return false;
				mk.i = key == "true";
				put_tag(L.ent, 1, 0);
				put_varint(L.ent, mk.i);
				break;
			default:
				if (!int_text(key.data(),
					      key.data() + key.size(), &neg,
					      &mag) ||
				    !int_value(kf, neg, mag, &v))
					return false;
				mk.i = v;
				put_tag(L.ent, 1, wire_type(kf));
				put_payload(L.ent, kf, wire_raw(kf, v));
			}
			if (!eat(':') || peek('n'))
				return false;
			// lv[k].ent is not touched below level k
			if (!element(vf, k, L.ent, true))
				return false;
			map_entry(L, mk, f->number());
			if (eat(','))
				continue;
			if (eat('}'))
				break;
			return false;
		}
	}
	return flush_map(k, kf, b);
}

// A JSON object as the body of a google.protobuf.Struct.
// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::struct_body(int k, std::string &out)
{
	if (k > kMaxDepth || !eat('{'))
		return false;
	Level &L = lv[size_t(k)];
	L.mapbuf.clear();
	L.mkeys.clear();
	L.keytext.clear();
	if (!eat('}')) {
		for (;;) {
			if (!string(&key))
				return false;
			MKey mk = map_key(L);

			put_bytes(L.ent, 1, key);
			std::string &r = lv[size_t(k) + 1].res;
			r.clear();
			if (!eat(':') || !json_value(k + 1, r))
				return false;
			put_bytes(L.ent, 2, r);
			map_entry(L, mk, 1);
			if (eat(','))
				continue;
			if (eat('}'))
				break;
			return false;
		}
	}
	return flush_map(k, nullptr, out);
}

// A JSON array as the body of a google.protobuf.ListValue.
// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::list_body(int k, std::string &out)
{
	if (k > kMaxDepth || !eat('['))
		return false;
	if (eat(']'))
		return true;
	for (;;) {
		std::string &r = lv[size_t(k) + 1].res;

		r.clear();
		if (!json_value(k + 1, r))
			return false;
		put_bytes(out, 1, r);
		if (eat(','))
			continue;
		return eat(']');
	}
}

// Any JSON value as the body of a google.protobuf.Value.
// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::json_value(int k, std::string &out)
{
	const char *b, *end;
	bool integral, neg;
	uint64_t mag;

	if (k > kMaxDepth)
		return false;
	ws();
	if (p >= e)
		return false;
	switch (*p) {
	case 'n':
		if (!lit("null", 4))
			return false;
		out.append("\x08\x00", 2);
		return true;
	case 't':
	case 'f':
		if (lit("true", 4))
			out.append("\x20\x01", 2);
		else if (lit("false", 5))
			out.append("\x20\x00", 2);
		else
			return false;
		return true;
	case '"':
		if (!string(&sval))
			return false;
		put_bytes(out, 3, sval);
		return true;
	case '{':
	case '[': {
		std::string &r = lv[size_t(k) + 1].res;
		bool obj = *p == '{';

		r.clear();
		if (!(obj ? struct_body(k + 1, r) : list_body(k + 1, r)))
			return false;
		put_bytes(out, obj ? 5 : 6, r);
		return true;
	}
	default: {
		double x;

		if (!number(&b, &end, &integral))
			return false;
		if (integral) {
			if (!int_text(b, end, &neg, &mag) ||
			    double(mag) > kExact53)
				return false;
			x = neg ? -double(mag) : double(mag);
		} else {
			auto res = std::from_chars(b, end, x);
			if (res.ec != std::errc() || res.ptr != end ||
			    !std::isfinite(x))
				return false;
		}
		uint64_t u;
		memcpy(&u, &x, 8);
		put_tag(out, 2, 1);
		put_fixed(out, u, 8);
		return true;
	}
	}
}

// ---- the printer from wire bytes (consume) ----
// Straight from the ring's bytes, without a DynamicMessage: what
// ParseFromArray then Print() would give, for canonical bytes of proto3
// types (fields in increasing number order, each once, a repeated
// field's records together, wire types as declared, map entries of key
// then value, UTF-8 strings). Anything else answers false, and the
// caller parses (which decides whether the bytes are a message at all).
namespace {

bool rd_varint(const uint8_t *&p, const uint8_t *e, uint64_t *v)
{
	uint64_t r = 0;

	for (int i = 0; i < 10; i++) {
		if (p >= e)
			return false;
		uint8_t b = *p++;
		r |= uint64_t(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (i == 9 && b > 1)
				return false;
			*v = r;
			return true;
		}
	}
	return false;
}

bool rd_tag(const uint8_t *&p, const uint8_t *e, int *num, int *wt)
{
	uint64_t t;

	if (!rd_varint(p, e, &t) || t > 0xffffffffull || (t >> 3) == 0)
		return false;
	*num = int(t >> 3);
	*wt = int(t & 7);
	return true;
}

// One payload of wire type @wt.
bool rd_payload(int wt, const uint8_t *&p, const uint8_t *e, WV *v)
{
	uint64_t n;

	switch (wt) {
	case 0:
		return rd_varint(p, e, &v->u);
	case 1:
		if (e - p < 8)
			return false;
		v->u = 0;
		for (int i = 7; i >= 0; i--)
			v->u = v->u << 8 | p[i];
		p += 8;
		return true;
	case 5:
		if (e - p < 4)
			return false;
		v->u = uint64_t(p[0]) | uint64_t(p[1]) << 8 |
		       uint64_t(p[2]) << 16 | uint64_t(p[3]) << 24;
		p += 4;
		return true;
	case 2:
		if (!rd_varint(p, e, &n) || n > uint64_t(e - p))
			return false;
		v->s = p;
		v->n = size_t(n);
		p += n;
		return true;
	default:
		return false;
	}
}

bool is32(const FD *f)
{
	switch (f->cpp_type()) {
	case FD::CPPTYPE_INT32:
	case FD::CPPTYPE_UINT32:
	case FD::CPPTYPE_ENUM:
	case FD::CPPTYPE_FLOAT:
		return true;
	default:
		return false;
	}
}

bool packable(const FD *f)
{
	return f->cpp_type() != FD::CPPTYPE_STRING &&
	       f->cpp_type() != FD::CPPTYPE_MESSAGE;
}

} // namespace

// A scalar or message payload of field @f as a JSON value.
// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::wvalue(std::string &o, const FD *f, const WV &v, int k)
{
	uint64_t u = v.u;

	switch (f->type()) {
	case FD::TYPE_INT32:
	case FD::TYPE_SFIXED32:
		put_int(o, int32_t(uint32_t(u)));
		return true;
	case FD::TYPE_UINT32:
	case FD::TYPE_FIXED32:
		put_int(o, uint32_t(u));
		return true;
	case FD::TYPE_SINT32: {
		uint32_t x = uint32_t(u);
		put_int(o, int32_t((x >> 1) ^ (0u - (x & 1))));
		return true;
	}
	case FD::TYPE_INT64:
	case FD::TYPE_SFIXED64:
		o.push_back('"');
		put_int(o, int64_t(u));
		o.push_back('"');
		return true;
	case FD::TYPE_UINT64:
	case FD::TYPE_FIXED64:
		o.push_back('"');
		put_int(o, u);
		o.push_back('"');
		return true;
	case FD::TYPE_SINT64:
		o.push_back('"');
		put_int(o, int64_t((u >> 1) ^ (0 - (u & 1))));
		o.push_back('"');
		return true;
	case FD::TYPE_BOOL:
		o.append(u ? "true" : "false");
		return true;
	case FD::TYPE_DOUBLE: {
		double x;
		memcpy(&x, &u, 8);
		if (!put_nonfinite(o, x))
			put_double(o, x);
		return true;
	}
	case FD::TYPE_FLOAT: {
		uint32_t b = uint32_t(u);
		float x;
		memcpy(&x, &b, 4);
		if (!put_nonfinite(o, double(x)))
			put_float(o, x);
		return true;
	}
	case FD::TYPE_ENUM: {
		const pb::EnumDescriptor *ed = f->enum_type();
		int n = int32_t(uint32_t(u));

		if (ed->full_name() == "google.protobuf.NullValue") {
			o.append("null");
			return true;
		}
		const pb::EnumValueDescriptor *ev = ed->FindValueByNumber(n);
		if (ev)
			return put_string(o, ev->name());
		put_int(o, n);
		return true;
	}
	case FD::TYPE_STRING:
		return put_string(o, std::string_view((const char *)v.s, v.n));
	case FD::TYPE_BYTES:
		put_base64(o, std::string_view((const char *)v.s, v.n));
		return true;
	case FD::TYPE_MESSAGE:
		return wmsg(o, f->message_type(), v.s, v.s + v.n, k + 1);
	default:
		return false;
	}
}

// The entries of map field @f (or a Struct's fields), from the payload
// of the first record (its wire type @wt, tag read) on: {key:value,...}.
// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::wmap(std::string &o, const FD *f, int wt, const uint8_t *&wp,
		       const uint8_t *we, int k)
{
	const FD *kf = f->message_type()->map_key();
	const FD *vf = f->message_type()->map_value();
	auto &keys = lv[size_t(k)].wkeys;
	bool first = true;

	keys.clear();
	o.push_back('{');
	for (;;) {
		WV ent, kv, vv;
		int kn, kw, vn, vw, num;

		if (wt != 2 || !rd_payload(2, wp, we, &ent))
			return false;
		const uint8_t *s = ent.s, *se = ent.s + ent.n;
		if (!rd_tag(s, se, &kn, &kw) || kn != 1 ||
		    kw != wire_type(kf) || !rd_payload(kw, s, se, &kv) ||
		    !rd_tag(s, se, &vn, &vw) || vn != 2 ||
		    vw != wire_type(vf) || !rd_payload(vw, s, se, &vv) ||
		    s != se)
			return false;
		if (!first)
			o.push_back(',');
		first = false;
		if (kf->cpp_type() == FD::CPPTYPE_STRING) {
			keys.emplace_back(0, std::string_view((const char *)kv.s,
							      kv.n));
			if (!put_string(o, keys.back().second))
				return false;
		} else {
			keys.emplace_back(kv.u, std::string_view());
			if (kf->cpp_type() == FD::CPPTYPE_BOOL) {
				o.append(kv.u ? "\"true\"" : "\"false\"");
			} else if (kf->cpp_type() == FD::CPPTYPE_INT64 ||
				   kf->cpp_type() == FD::CPPTYPE_UINT64) {
				wvalue(o, kf, kv, k); // quoted already
			} else {
				o.push_back('"');
				wvalue(o, kf, kv, k);
				o.push_back('"');
			}
		}
		o.push_back(':');
		if (!wvalue(o, vf, vv, k))
			return false;
		// the next record the same field?
		const uint8_t *q = wp;
		if (q == we || !rd_tag(q, we, &num, &wt) || num != f->number())
			break;
		wp = q;
	}
	o.push_back('}');
	if (keys.size() > 1) {
		std::sort(keys.begin(), keys.end());
		if (std::adjacent_find(keys.begin(), keys.end()) != keys.end())
			return false; // a key twice: the parse decides
	}
	return true;
}

// A message's bytes [wp, we) as JSON (well-known types in their forms).
// NOLINTNEXTLINE(misc-no-recursion): nesting bounded by kMaxDepth
bool Codec::Impl::wmsg(std::string &o, const pb::Descriptor *d,
		       const uint8_t *wp, const uint8_t *we, int k)
{
	const Info &in = info(d);
	int num, wt;
	WV v;

	if (k > kMaxDepth || !in.proto3)
		return false;
	switch (in.kind) {
	case K_PLAIN:
	case K_EMPTY:
		break;
	case K_TIMESTAMP:
	case K_DURATION: {
		int64_t s = 0, last = 0;
		int32_t n = 0;

		while (wp < we) {
			if (!rd_tag(wp, we, &num, &wt) || num <= last ||
			    num > 2 || wt != 0 || !rd_payload(0, wp, we, &v))
				return false;
			last = num;
			if (num == 1)
				s = int64_t(v.u);
			else
				n = int32_t(uint32_t(v.u));
		}
		if (in.kind == K_TIMESTAMP)
			return put_timestamp(o, s, n);
		return put_duration(o, s, n);
	}
	case K_WRAPPER: {
		const FD *f = in.fields[0];

		v.u = 0;
		v.s = nullptr;
		v.n = 0;
		if (wp < we && (!rd_tag(wp, we, &num, &wt) || num != 1 ||
			      wt != wire_type(f) || !rd_payload(wt, wp, we, &v)))
			return false;
		return wp == we && wvalue(o, f, v, k);
	}
	case K_STRUCT:
		if (wp == we) {
			o.append("{}");
			return true;
		}
		return rd_tag(wp, we, &num, &wt) && num == 1 &&
		       wmap(o, in.fields[0], wt, wp, we, k) && wp == we;
	case K_VALUE:
		if (!rd_tag(wp, we, &num, &wt) || num > 6 ||
		    wt != wire_type(in.bynum[size_t(num)]) ||
		    !rd_payload(wt, wp, we, &v) || wp != we)
			return false;
		return wvalue(o, in.bynum[size_t(num)], v, k);
	case K_LIST:
		o.push_back('[');
		for (bool first = true; wp < we; first = false) {
			if (!rd_tag(wp, we, &num, &wt) || num != 1 || wt != 2 ||
			    !rd_payload(2, wp, we, &v))
				return false;
			if (!first)
				o.push_back(',');
			if (!wvalue(o, in.fields[0], v, k))
				return false;
		}
		o.push_back(']');
		return true;
	default:
		return false; // Any, FieldMask
	}

	int last = 0;
	uint64_t oneofs = 0;
	bool first = true;

	o.push_back('{');
	while (wp < we) {
		if (!rd_tag(wp, we, &num, &wt) || num <= last ||
		    size_t(num) >= in.bynum.size() || !in.bynum[size_t(num)])
			return false;
		last = num;
		const FD *f = in.bynum[size_t(num)];
		const pb::OneofDescriptor *od = f->real_containing_oneof();
		if (od) {
			int i = od->index();
			if (i >= 64 || (oneofs >> i & 1))
				return false;
			oneofs |= 1ull << i;
		}
		size_t mark = o.size();
		if (!first)
			o.push_back(',');
		o.append(in.keynum[size_t(num)]);
		if (f->is_map()) {
			if (!wmap(o, f, wt, wp, we, k))
				return false;
			first = false;
			continue;
		}
		if (f->is_repeated()) {
			size_t count = 0;

			o.push_back('[');
			for (;;) {
				if (wt == 2 && packable(f)) {
					if (!rd_payload(2, wp, we, &v))
						return false;
					const uint8_t *s = v.s, *se = v.s + v.n;
					int ew = wire_type(f);
					while (s < se) {
						WV x;
						if (!rd_payload(ew, s, se, &x))
							return false;
						if (count++)
							o.push_back(',');
						wvalue(o, f, x, k);
					}
				} else {
					if (wt != wire_type(f) ||
					    !rd_payload(wt, wp, we, &v))
						return false;
					if (count++)
						o.push_back(',');
					if (!wvalue(o, f, v, k))
						return false;
				}
				const uint8_t *q = wp;
				int n2, w2;
				if (q == we || !rd_tag(q, we, &n2, &w2) ||
				    n2 != num)
					break;
				wp = q;
				wt = w2;
			}
			if (count == 0) {
				o.resize(mark);
				continue;
			}
			o.push_back(']');
			first = false;
			continue;
		}
		if (wt != wire_type(f) || !rd_payload(wt, wp, we, &v))
			return false;
		if (!f->has_presence() &&
		    (wt == 2 ? v.n == 0 : is32(f) ? uint32_t(v.u) == 0 : v.u == 0)) {
			o.resize(mark); // at its default: not in the message
			continue;
		}
		if (!wvalue(o, f, v, k))
			return false;
		first = false;
	}
	o.push_back('}');
	return true;
}

Codec::Codec(pb::MessageFactory *factory) : impl_(new Impl)
{
	impl_->factory = factory;
}

Codec::~Codec() = default;

bool Codec::Print(const pb::Message &m, std::string *out)
{
	return impl_->message(*out, m);
}

bool Codec::PrintWire(const pb::Descriptor *d, const void *data, size_t len,
		      std::string *out)
{
	const uint8_t *p = static_cast<const uint8_t *>(data);

	out->clear();
	return impl_->wmsg(*out, d, p, p + len, 0);
}

bool Codec::Parse(const pb::Descriptor *d, const char *json, size_t len,
		  std::string *out)
{
	Impl &s = *impl_;
	Kind k = s.info(d).kind;

	out->clear();
	if (k != K_PLAIN && k != K_EMPTY)
		return false;
	s.p = json;
	s.e = json + len;
	if (!s.object(d, 0, *out))
		return false;
	s.ws();
	return s.p == s.e;
}

} // namespace pbjson
