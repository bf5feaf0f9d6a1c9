// SPDX-License-Identifier: MIT
//
// check_pbjson: the command's own proto3 JSON (cli/pbjson.h, in
// cli/pbschema.cc) against libprotobuf's, differentially.
//  - printing: random acme.telemetry.v1.Reading and pbring.demo.v1.
//    DeviceEvent messages; whatever the wire printer (from the bytes) and
//    the reflection printer (from the message) print must be byte for
//    byte util::MessageToJsonString's text, and pbs_pb_to_json (with its
//    fallbacks) must always be;
//  - parsing: libprotobuf's JSON of those messages, with original field
//    names, with defaults printed, with enums as numbers, the lines of
//    tests/scenarios/data/readings.jsonl and hand-written variants
//    (numbers in strings, null, URL-safe base64...): whatever the parser
//    takes must give the bytes of util::JsonStringToMessage's message
//    serialized deterministically (and an equal message), and what
//    libprotobuf refuses, pbs_json_to_pb must refuse;
//  - the fallbacks (an Any of a Timestamp...) are taken and still right.
// usage: check_pbjson SOURCE_DIR [ITERATIONS]
#include "pbjson.h"
#include "pbschema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/field_comparator.h>
#include <google/protobuf/util/message_differencer.h>

namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;

namespace {

int failures;
long checks;

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		checks++;                                                  \
		if (!(cond)) {                                             \
			failures++;                                        \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                      \
			fputc('\n', stderr);                               \
			if (failures > 20)                                 \
				exit(1);                                   \
		}                                                          \
	} while (0)

// Equal as messages (NaN equal to NaN, maps as maps).
bool same(const pb::Message &a, const pb::Message &b)
{
	pb::util::DefaultFieldComparator cmp;
	pb::util::MessageDifferencer md;

	cmp.set_treat_nan_as_equal(true);
	md.set_field_comparator(&cmp);
	return md.Compare(a, b);
}

std::string det(const pb::Message &m)
{
	std::string out;
	{
		pb::io::StringOutputStream os(&out);
		pb::io::CodedOutputStream cos(&os);
		cos.SetSerializationDeterministic(true);
		m.SerializeToCodedStream(&cos);
	}
	return out;
}

struct Schema {
	std::vector<uint8_t> fds;
	pb::SimpleDescriptorDatabase db;
	std::unique_ptr<pb::DescriptorPool> pool;
	pb::DynamicMessageFactory factory;
	const pb::Descriptor *type = nullptr;
	pbs_codec *codec = nullptr;

	Schema(const std::string &proto, const std::string &incl,
	       const char *name)
	{
		const char *dirs[] = {incl.c_str()};
		uint8_t *bytes;
		size_t len;
		char *err = nullptr;

		if (pbs_canonical(proto.c_str(), name, dirs, 1, &bytes, &len,
				  &err)) {
			fprintf(stderr, "schema: %s\n", err);
			exit(1);
		}
		fds.assign(bytes, bytes + len);
		free(bytes);
		pb::FileDescriptorSet set;
		set.ParseFromArray(fds.data(), int(fds.size()));
		for (const auto &f : set.file())
			db.Add(f);
		pool.reset(new pb::DescriptorPool(&db));
		type = pool->FindMessageTypeByName(name);
		if (!type || pbs_codec_open(fds.data(), fds.size(), name,
					    &codec, &err)) {
			fprintf(stderr, "codec: %s\n", err ? err : name);
			exit(1);
		}
	}
	~Schema() { pbs_codec_close(codec); }
	std::unique_ptr<pb::Message> make(const pb::Descriptor *d)
	{
		return std::unique_ptr<pb::Message>(
			factory.GetPrototype(d)->New());
	}
};

// ---- random messages ----
std::mt19937_64 rng(12345);

uint64_t rnd(uint64_t n) { return n ? rng() % n : 0; }
bool coin(int pct) { return int(rnd(100)) < pct; }

const char *kStrings[] = {
	"",	 "a",	 "sensor-000042", "munich", "<b>&amp;</b>", "q\"uo\\te",
	"tab\there\nnl\r\b\f", "\x01\x1f\x7f", "\xc2\x80\xc2\x9f\xc2\xa0",
	"\xe2\x80\xa8\xe2\x80\xa9", "\xef\xbb\xbf BOM", "\xc2\xad soft",
	"\xd8\x80 arabic \xdb\x9d", "emoji \xf0\x9f\x98\x80",
	"\xf3\xa0\x80\x81 tag", "\xf0\x9d\x85\xb3 music", "\xe4\xb8\xad\xc3\xa9",
	"/slash/", "\xe2\x81\xa0\xe2\x81\xaa",
};

std::string rstring()
{
	if (coin(10)) {
		std::string s("n\0l", 3);
		return s;
	}
	return kStrings[rnd(sizeof kStrings / sizeof *kStrings)];
}

std::string rbytes()
{
	std::string s;
	size_t n = rnd(8);
	for (size_t i = 0; i < n; i++)
		s.push_back(char(rnd(256)));
	return s;
}

double rdouble()
{
	static const double special[] = {
		0.0,	-0.0,  1.5,	 -2.25, 0.1,	 1e15, 1e16, 1e-5,
		1e-4,	1e300, 5e-324,	 123456789.123456789,
		2.0 / 3, std::numeric_limits<double>::infinity(),
		-std::numeric_limits<double>::infinity(),
		std::numeric_limits<double>::quiet_NaN(), 9007199254740993.0,
		48.125};
	if (coin(50))
		return special[rnd(sizeof special / sizeof *special)];
	double d;
	uint64_t u = rng();
	memcpy(&d, &u, 8);
	if (std::isnan(d))
		d = 1;
	return coin(50) ? d : double(int64_t(rng()) % 100000) / 64;
}

float rfloat()
{
	if (coin(50))
		return float(rdouble());
	float f;
	uint32_t u = uint32_t(rng());
	memcpy(&f, &u, 4);
	return std::isnan(f) ? 0.5f : f;
}

int64_t rint64()
{
	static const int64_t sp[] = {0,
				     1,
				     -1,
				     INT64_MIN,
				     INT64_MAX,
				     INT32_MIN,
				     INT32_MAX,
				     1700000000000,
				     9007199254740993};
	return coin(50) ? sp[rnd(sizeof sp / sizeof *sp)] : int64_t(rng());
}

void fill(Schema &s, pb::Message *m, int depth);

void set_scalar(Schema &s, pb::Message *m, const FD *f, bool add)
{
	const pb::Reflection *r = m->GetReflection();
	switch (f->cpp_type()) {
	case FD::CPPTYPE_INT32: {
		int32_t v = int32_t(rint64());
		add ? r->AddInt32(m, f, v) : r->SetInt32(m, f, v);
		break;
	}
	case FD::CPPTYPE_INT64: {
		int64_t v = rint64();
		add ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v);
		break;
	}
	case FD::CPPTYPE_UINT32: {
		uint32_t v = uint32_t(rint64());
		add ? r->AddUInt32(m, f, v) : r->SetUInt32(m, f, v);
		break;
	}
	case FD::CPPTYPE_UINT64: {
		uint64_t v = uint64_t(rint64());
		add ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v);
		break;
	}
	case FD::CPPTYPE_DOUBLE: {
		double v = rdouble();
		add ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v);
		break;
	}
	case FD::CPPTYPE_FLOAT: {
		float v = rfloat();
		add ? r->AddFloat(m, f, v) : r->SetFloat(m, f, v);
		break;
	}
	case FD::CPPTYPE_BOOL: {
		bool v = coin(50);
		add ? r->AddBool(m, f, v) : r->SetBool(m, f, v);
		break;
	}
	case FD::CPPTYPE_ENUM: {
		const pb::EnumDescriptor *ed = f->enum_type();
		int v = coin(80) ? ed->value(int(rnd(uint64_t(ed->value_count()))))
					   ->number()
				 : int(rnd(200)) - 50;
		add ? r->AddEnumValue(m, f, v) : r->SetEnumValue(m, f, v);
		break;
	}
	case FD::CPPTYPE_STRING: {
		std::string v = f->type() == FD::TYPE_BYTES ? rbytes() : rstring();
		add ? r->AddString(m, f, v) : r->SetString(m, f, v);
		break;
	}
	case FD::CPPTYPE_MESSAGE: {
		pb::Message *sub = add ? r->AddMessage(m, f) : r->MutableMessage(m, f);
		fill(s, sub, 0);
		break;
	}
	}
}


void fill_wkt(Schema &s, pb::Message *m, const std::string &name, int depth)
{
	const pb::Reflection *r = m->GetReflection();
	const pb::Descriptor *d = m->GetDescriptor();
	auto F = [&](const char *n) { return d->FindFieldByName(n); };

	if (name == "google.protobuf.Timestamp") {
		int64_t sec = coin(90) ? int64_t(rnd(253402300800ull)) -
						 int64_t(coin(30) ? 62135596800 : 0)
				       : rint64();
		int32_t ns = coin(30) ? 0 : coin(30) ? int32_t(rnd(1000)) * 1000000
			   : coin(30) ? int32_t(rnd(1000000)) * 1000
			   : coin(95)	? int32_t(rnd(1000000000))
					: -5;
		r->SetInt64(m, F("seconds"), sec);
		r->SetInt32(m, F("nanos"), ns);
	} else if (name == "google.protobuf.Duration") {
		int64_t sec = int64_t(rnd(1000000)) - 500000;
		int32_t ns = coin(30) ? 0 : int32_t(rnd(1000000000));
		if (sec < 0 || (sec == 0 && coin(50)))
			ns = -ns;
		if (coin(5))
			ns = -ns; // sign mismatch: refused
		if (coin(3))
			sec = 315576000001;
		r->SetInt64(m, F("seconds"), sec);
		r->SetInt32(m, F("nanos"), ns);
	} else if (name == "google.protobuf.Struct") {
		int n = int(rnd(4));
		for (int i = 0; i < n; i++) {
			pb::Message *en = r->AddMessage(m, F("fields"));
			en->GetReflection()->SetString(
				en, en->GetDescriptor()->map_key(),
				i == 0 ? std::string("k") : rstring() + char('0' + i));
			fill_wkt(s,
				 en->GetReflection()->MutableMessage(
					 en, en->GetDescriptor()->map_value()),
				 "google.protobuf.Value", depth + 1);
		}
	} else if (name == "google.protobuf.Value") {
		int k = int(rnd(depth > 2 ? 4 : 6));
		switch (k) {
		case 0:
			r->SetEnumValue(m, F("null_value"), 0);
			break;
		case 1:
			r->SetDouble(m, F("number_value"), rdouble());
			break;
		case 2:
			r->SetString(m, F("string_value"), rstring());
			break;
		case 3:
			r->SetBool(m, F("bool_value"), coin(50));
			break;
		case 4:
			fill_wkt(s, r->MutableMessage(m, F("struct_value")),
				 "google.protobuf.Struct", depth + 1);
			break;
		default:
			fill_wkt(s, r->MutableMessage(m, F("list_value")),
				 "google.protobuf.ListValue", depth + 1);
		}
	} else if (name == "google.protobuf.ListValue") {
		int n = int(rnd(4));
		for (int i = 0; i < n; i++)
			fill_wkt(s, r->AddMessage(m, F("values")),
				 "google.protobuf.Value", depth + 1);
	} else if (name == "google.protobuf.Any") {
		int k = int(rnd(4));
		if (k == 0)
			return; // empty Any: {}
		const pb::Descriptor *pd = s.pool->FindMessageTypeByName(
			k == 1 ? "acme.telemetry.v1.Location"
			       : k == 2 ? "acme.telemetry.v1.Tree"
					: "google.protobuf.Timestamp");
		std::unique_ptr<pb::Message> pl = s.make(pd);
		if (k == 3)
			fill_wkt(s, pl.get(), pd->full_name(), depth + 1);
		else
			fill(s, pl.get(), depth + 1);
		r->SetString(m, F("type_url"),
			     "type.googleapis.com/" + pd->full_name());
		r->SetString(m, F("value"), pl->SerializeAsString());
	} else if (d->FindFieldByName("value")) { // wrappers
		if (coin(80))
			set_scalar(s, m, F("value"), false);
	}
}

void fill(Schema &s, pb::Message *m, int depth)
{
	const pb::Descriptor *d = m->GetDescriptor();
	const pb::Reflection *r = m->GetReflection();

	if (d->full_name().compare(0, 16, "google.protobuf.") == 0) {
		fill_wkt(s, m, d->full_name(), depth);
		return;
	}
	for (int i = 0; i < d->field_count(); i++) {
		const FD *f = d->field(i);
		if (!coin(depth ? 40 : 60))
			continue;
		if (f->cpp_type() == FD::CPPTYPE_MESSAGE && depth > 3)
			continue;
		if (f->is_map()) {
			int n = int(rnd(4));
			for (int j = 0; j < n; j++) {
				pb::Message *en = r->AddMessage(m, f);
				const pb::Descriptor *ed = en->GetDescriptor();
				set_scalar(s, en, ed->map_key(), false);
				if (coin(90)) {
					const FD *vf = ed->map_value();
					if (vf->cpp_type() == FD::CPPTYPE_MESSAGE)
						fill(s, en->GetReflection()->MutableMessage(en, vf),
						     depth + 1);
					else
						set_scalar(s, en, vf, false);
				}
			}
		} else if (f->is_repeated()) {
			int n = int(rnd(4));
			for (int j = 0; j < n; j++) {
				if (f->cpp_type() == FD::CPPTYPE_MESSAGE)
					fill(s, r->AddMessage(m, f), depth + 1);
				else
					set_scalar(s, m, f, true);
			}
		} else if (f->cpp_type() == FD::CPPTYPE_MESSAGE) {
			fill(s, r->MutableMessage(m, f), depth + 1);
		} else {
			set_scalar(s, m, f, false);
		}
	}
}

// ---- the checks ----
long wire_hits, refl_hits, parse_hits, parse_tries;

std::string lib_json(const pb::Message &m, bool *ok,
		     const pb::util::JsonPrintOptions &o = {})
{
	std::string out;
	*ok = pb::util::MessageToJsonString(m, &out, o).ok();
	return out;
}

// One JSON text through both parsers.
void check_parse(Schema &s, const pbjson::Codec *, pbjson::Codec &fast,
		 const std::string &json, const char *what)
{
	std::unique_ptr<pb::Message> ref = s.make(s.type);
	if (getenv("CHECK_PBJSON_TRACE"))
		fprintf(stderr, "parse: %s\n", json.c_str());
	bool lib_ok;
	try {
		lib_ok = pb::util::JsonStringToMessage(json, ref.get()).ok();
	} catch (const pb::FatalException &) {
		lib_ok = false; // its CHECKs: the command refuses those lines
	}
	std::string mine;
	bool fast_ok = fast.Parse(s.type, json.data(), json.size(), &mine);

	parse_tries++;
	if (fast_ok) {
		parse_hits++;
		CHECK(lib_ok, "%s: taken here, refused by libprotobuf: %s", what,
		      json.c_str());
		if (!lib_ok)
			return;
		std::string want = det(*ref);
		CHECK(mine == want, "%s: bytes differ for %s", what,
		      json.c_str());
		std::unique_ptr<pb::Message> back = s.make(s.type);
		CHECK(back->ParseFromString(mine) &&
			      same(*back, *ref),
		      "%s: messages differ for %s", what, json.c_str());
	}
	// the command's path, fallback included
	const void *out;
	size_t len;
	const char *reason;
	int rc = pbs_json_to_pb(s.codec, json.data(), json.size(), &out, &len,
				&reason);
	CHECK((rc == 0) == lib_ok, "%s: pbs_json_to_pb %d, libprotobuf %d: %s",
	      what, rc, lib_ok, json.c_str());
	if (rc == 0 && lib_ok)
		CHECK(std::string((const char *)out, len) == det(*ref),
		      "%s: pbs_json_to_pb bytes differ: %s", what, json.c_str());
	if (rc)
		CHECK(reason && *reason, "%s: no reason for %s", what,
		      json.c_str());
}

void check_message(Schema &s, pbjson::Codec &fast, const pb::Message &m)
{
	std::string bytes = m.SerializeAsString();
	std::unique_ptr<pb::Message> m2 = s.make(s.type);
	m2->ParseFromString(bytes);
	bool ok;
	std::string ref = lib_json(*m2, &ok);
	std::string out;

	if (fast.PrintWire(s.type, bytes.data(), bytes.size(), &out)) {
		wire_hits++;
		CHECK(ok && out == ref, "wire printer:\n mine %s\n  lib %s",
		      out.c_str(), ok ? ref.c_str() : "(refused)");
	}
	out.clear();
	if (fast.Print(*m2, &out)) {
		refl_hits++;
		CHECK(ok && out == ref, "reflection printer:\n mine %s\n  lib %s",
		      out.c_str(), ok ? ref.c_str() : "(refused)");
	}
	// the message as built (maps filled through reflection), too
	bool built_ok;
	std::string built = lib_json(m, &built_ok);
	out.clear();
	if (fast.Print(m, &out))
		CHECK(built_ok && out == built,
		      "reflection printer (built):\n mine %s\n  lib %s",
		      out.c_str(), built_ok ? built.c_str() : "(refused)");
	const char *js;
	size_t jl;
	int rc = pbs_pb_to_json(s.codec, bytes.data(), bytes.size(), &js, &jl);
	CHECK((rc == 0) == ok, "pbs_pb_to_json %d, libprotobuf %d", rc, ok);
	if (rc == 0 && ok)
		CHECK(std::string(js, jl) == ref,
		      "pbs_pb_to_json:\n mine %s\n  lib %s", js, ref.c_str());
	if (!ok)
		return;
	check_parse(s, nullptr, fast, ref, "printed");
	pb::util::JsonPrintOptions o;
	o.preserve_proto_field_names = true;
	check_parse(s, nullptr, fast, lib_json(*m2, &ok, o), "proto names");
	o = {};
	o.always_print_primitive_fields = true;
	check_parse(s, nullptr, fast, lib_json(*m2, &ok, o), "defaults");
	o = {};
	o.always_print_enums_as_ints = true;
	o.add_whitespace = true;
	check_parse(s, nullptr, fast, lib_json(*m2, &ok, o), "enum ints");
}

std::vector<std::string> read_lines(const std::string &path)
{
	std::ifstream in(path);
	std::vector<std::string> v;
	std::string l;
	while (std::getline(in, l))
		if (!l.empty())
			v.push_back(l);
	return v;
}

// A random edit of @s: a byte replaced, inserted or deleted, a span
// dropped or repeated.
std::string mutate(const std::string &s)
{
	static const char pool[] = "{}[]\",:-+.0123456789eEnulltruefalse\\/u "
				   "aAzZ_@=\x00\x80\xff";
	std::string t = s;
	int edits = 1 + int(rnd(3));

	for (int i = 0; i < edits; i++) {
		size_t at = rnd(t.size() + 1);
		char c = pool[rnd(sizeof pool - 1)];
		switch (rnd(5)) {
		case 0:
			if (at < t.size())
				t[at] = c;
			break;
		case 1:
			t.insert(at, 1, c);
			break;
		case 2:
			if (at < t.size())
				t.erase(at, 1);
			break;
		case 3:
			t.erase(at, rnd(8));
			break;
		default:
			t.insert(at, t.substr(at, rnd(8)));
		}
	}
	return t;
}

// Random edits of a message's bytes: what the wire printer takes must
// parse, and print as libprotobuf prints the parsed message.
void check_wire_mutants(Schema &s, pbjson::Codec &fast,
			const std::string &bytes, int n)
{
	for (int i = 0; i < n; i++) {
		std::string b = bytes;
		int edits = 1 + int(rnd(2));
		for (int j = 0; j < edits && !b.empty(); j++) {
			size_t at = rnd(b.size());
			switch (rnd(3)) {
			case 0:
				b[at] = char(rng());
				break;
			case 1:
				b.erase(at, 1 + rnd(3));
				break;
			default:
				b.insert(at, 1, char(rng()));
			}
		}
		std::string out;
		if (!fast.PrintWire(s.type, b.data(), b.size(), &out))
			continue;
		std::unique_ptr<pb::Message> m = s.make(s.type);
		bool parsed = m->ParseFromString(b), ok = false;
		std::string ref = parsed ? lib_json(*m, &ok) : std::string();
		CHECK(parsed && ok && out == ref,
		      "wire printer took mutated bytes:\n mine %s\n  lib %s",
		      out.c_str(), parsed ? ref.c_str() : "(does not parse)");
	}
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: check_pbjson SOURCE_DIR [N]\n");
		return 2;
	}
	std::string root = argv[1];
	long n = argc > 2 ? atol(argv[2]) : 3000;
	Schema reading(root + "/proto/acme/telemetry/v1/reading.proto",
		       root + "/proto", "acme.telemetry.v1.Reading");
	Schema device(root + "/proto/pbring/demo/v1/device.proto",
		      root + "/proto", "pbring.demo.v1.DeviceEvent");
	pbjson::Codec fr(&reading.factory), fd(&device.factory);

	// random messages
	for (long i = 0; i < n; i++) {
		std::unique_ptr<pb::Message> m = reading.make(reading.type);
		fill(reading, m.get(), 0);
		check_message(reading, fr, *m);
		check_wire_mutants(reading, fr, m->SerializeAsString(), 4);
		std::unique_ptr<pb::Message> d = device.make(device.type);
		fill(device, d.get(), 0);
		check_message(device, fd, *d);
	}
	fprintf(stderr,
		"random: wire printer took %ld, reflection printer %ld of %ld "
		"messages; parser %ld of %ld texts\n",
		wire_hits, refl_hits, 2 * n, parse_hits, parse_tries);
	CHECK(wire_hits > n / 2 && refl_hits > n && parse_hits > parse_tries / 2,
	      "the fast paths are rarely taken");

	// the scenario's lines
	long hits = parse_hits, tries = parse_tries;
	for (const std::string &l :
	     read_lines(root + "/tests/scenarios/data/readings.jsonl"))
		check_parse(reading, nullptr, fr, l, "readings.jsonl");
	fprintf(stderr, "readings.jsonl: parser took %ld of %ld lines\n",
		parse_hits - hits, parse_tries - tries);
	hits = parse_hits, tries = parse_tries;

	// hand-written variants, good and bad
	static const char *texts[] = {
		"{}",
		" { } ",
		"{\"fInt64\":\"12\",\"f_int64\":\"12\"}",
		"{\"fInt64\":12,\"fUint64\":\"18446744073709551615\"}",
		"{\"fInt64\":-9223372036854775808}",
		"{\"fInt64\":9223372036854775808}",
		"{\"fInt64\":1.0}",
		"{\"fInt64\":1e3}",
		"{\"fInt64\":\"01\"}",
		"{\"fInt64\":\"-0\"}",
		"{\"fInt64\":\" 1\"}",
		"{\"fInt32\":\"12\"}",
		"{\"fInt32\":2147483648}",
		"{\"fInt32\":-2147483648}",
		"{\"fUint32\":-1}",
		"{\"fSint32\":-5,\"fSint64\":\"-6\",\"fSfixed32\":-7,\"fSfixed64\":\"-8\",\"fFixed32\":9,\"fFixed64\":\"10\"}",
		"{\"fInt32\":null,\"deviceId\":null,\"where\":null,\"samples\":null,\"gauges\":null}",
		"{\"explicitZero\":null}",
		"{\"explicitZero\":0}",
		"{\"explicit_zero\":0}",
		"{\"note\":null}",
		"{\"note\":\"a\",\"code\":\"1\"}",
		"{\"note\":\"\"}",
		"{\"code\":0}",
		"{\"fix\":{}}",
		"{\"fDouble\":\"NaN\",\"fFloat\":\"-Infinity\"}",
		"{\"fDouble\":\"1.5\"}",
		"{\"fDouble\":-0.0}",
		"{\"fDouble\":-0}",
		"{\"fDouble\":1e400}",
		"{\"fDouble\":9007199254740993}",
		"{\"fFloat\":3.5e38}",
		"{\"fFloat\":16777217}",
		"{\"fFloat\":0.1}",
		"{\"fBool\":true,\"f_bool\":false}",
		"{\"fBool\":\"true\"}",
		"{\"fBool\":1}",
		"{\"raw\":\"AAAA\"}",
		"{\"raw\":\"-_-_\"}",
		"{\"raw\":\"+/+/\"}",
		"{\"raw\":\"YQ\"}",
		"{\"raw\":\"YQ==\"}",
		"{\"raw\":\"YR==\"}",
		"{\"raw\":\"YQ=\"}",
		"{\"raw\":\"Y\"}",
		"{\"raw\":\"!!\"}",
		"{\"unit\":\"UNIT_VOLT\"}",
		"{\"unit\":2}",
		"{\"unit\":99}",
		"{\"unit\":\"2\"}",
		"{\"unit\":\"unit_volt\"}",
		"{\"unit\":\"NOPE\"}",
		"{\"units\":[\"UNIT_VOLT\",0,-1]}",
		"{\"samples\":[1,\"2\",-3]}",
		"{\"samples\":[1,null]}",
		"{\"samples\":1}",
		"{\"unpacked\":[1,2,3]}",
		"{\"tags\":[\"a\",\"\",\"\\u00e9\\ud83d\\ude00\"]}",
		"{\"deviceId\":\"\\/\\b\\f\\n\\r\\t\\\"\\\\\\u0000\\u2028\"}",
		"{\"deviceId\":\"\\ud800\"}",
		"{\"deviceId\":\"\\x41\"}",
		"{\"deviceId\":\"\xff\"}",
		"{\"deviceId\":'single'}",
		"{deviceId:\"x\"}",
		"{\"deviceId\":\"a\",}",
		"{\"deviceId\":\"a\"} x",
		"{\"deviceId\":1}",
		"{\"nope\":1}",
		"{\"where\":{\"lat\":1,\"site_name\":\"x\",\"siteName\":\"y\"}}",
		"{\"where\":[]}",
		"{\"path\":[{},{\"lat\":2}]}",
		"{\"gauges\":{\"b\":1,\"a\":2,\"c\":-0.5}}",
		"{\"gauges\":{\"a\":1,\"a\":2}}",
		"{\"gauges\":{\"a\":null}}",
		"{\"byId\":{\"-5\":{},\"10\":{\"lat\":1},\"2\":{}}}",
		"{\"byId\":{\"x\":{}}}",
		"{\"byId\":{\"01\":{}}}",
		"{\"by_id\":{\"9223372036854775807\":{}}}",
		"{\"takenAt\":\"2024-06-11T10:00:00Z\"}",
		"{\"takenAt\":\"2024-06-11T10:00:00.1Z\"}",
		"{\"takenAt\":\"2024-06-11T10:00:00.123456789Z\"}",
		"{\"takenAt\":\"2024-06-11T10:00:00.1234567891Z\"}",
		"{\"takenAt\":\"2024-06-11T10:00:00+01:00\"}",
		"{\"takenAt\":\"2024-02-30T10:00:00Z\"}",
		"{\"takenAt\":\"2024-02-29T23:59:59Z\"}",
		"{\"takenAt\":\"0001-01-01T00:00:00Z\"}",
		"{\"takenAt\":\"9999-12-31T23:59:59.999999999Z\"}",
		"{\"takenAt\":\"1969-12-31T23:59:59.5Z\"}",
		"{\"takenAt\":null}",
		"{\"takenAt\":12}",
		"{\"exposure\":\"1.5s\"}",
		"{\"exposure\":\"-1.5s\"}",
		"{\"exposure\":\"-0.5s\"}",
		"{\"exposure\":\"0s\"}",
		"{\"exposure\":\"-0s\"}",
		"{\"exposure\":\"315576000001s\"}",
		"{\"exposure\":\"1.000000001s\"}",
		"{\"exposure\":\"1\"}",
		"{\"maybeCount\":\"0\",\"maybeLabel\":\"\"}",
		"{\"maybeCount\":5,\"maybeLabel\":\"x\"}",
		"{\"maybeCount\":null}",
		"{\"maybeCount\":{\"value\":5}}",
		"{\"extra\":{}}",
		"{\"extra\":{\"a\":null,\"b\":[1,\"x\",true,{\"c\":[]}],\"c\":-1.5e3}}",
		"{\"extra\":{\"a\":1,\"a\":2}}",
		"{\"extra\":{\"big\":9007199254740993}}",
		"{\"extra\":null}",
		"{\"extra\":[]}",
		"{\"detail\":{\"@type\":\"type.googleapis.com/acme.telemetry.v1.Location\",\"lat\":1.25}}",
		"{\"detail\":{}}",
		"{\"detail\":{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"1s\"}}",
		// libprotobuf 3.21 aborts on this one (an internal CHECK)
		"{\"detail\":{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"1s\",\"explicitZero\":0}}",
		"{\"f\u0000\":1}",
		"{\"tree\":{\"name\":\"a\",\"children\":[{\"name\":\"b\",\"children\":[{}]}]}}",
		"{\"renamedInJson\":\"x\"}",
		"{\"json_renamed\":\"x\"}",
		"{\"jsonRenamed\":\"x\"}",
		"[]",
		"",
		"{\"deviceId\":\"a\"",
		"{\"fInt32\":00}",
		"{\"fInt32\":-}",
		"{\"fDouble\":.5}",
		"{\"fDouble\":1.}",
	};
	for (const char *t : texts)
		check_parse(reading, nullptr, fr, t, "hand-written");
	// and random edits of them and of the scenario's lines
	std::vector<std::string> seeds(std::begin(texts), std::end(texts));
	for (const std::string &l :
	     read_lines(root + "/tests/scenarios/data/readings.jsonl"))
		seeds.push_back(l);
	for (long i = 0; i < n * 4; i++)
		check_parse(reading, nullptr, fr,
			    mutate(seeds[rnd(seeds.size())]), "mutated");
	fprintf(stderr,
		"hand-written and mutated: parser took %ld of %ld texts\n",
		parse_hits - hits, parse_tries - tries);
	static const char *dev[] = {
		"{\"id\":\"x\",\"status\":3,\"seq\":\"7\",\"sentNs\":8,\"blob\":\"AQID\"}",
		"{\"sent_ns\":\"18446744073709551615\"}",
		"{\"status\":\"3\",\"blob\":null}",
	};
	for (const char *t : dev)
		check_parse(device, nullptr, fd, t, "device");

	// deep nesting: beyond the parser's depth, libprotobuf's
	std::string deep = "{\"tree\":";
	for (int i = 0; i < 80; i++)
		deep += "{\"children\":[";
	deep += "{}";
	for (int i = 0; i < 80; i++)
		deep += "]}";
	deep += "}";
	check_parse(reading, nullptr, fr, deep, "deep");

	// the fallbacks: an Any of a well-known type goes to libprotobuf
	{
		std::unique_ptr<pb::Message> m = reading.make(reading.type);
		const pb::Reflection *r = m->GetReflection();
		pb::Message *any =
			r->MutableMessage(m.get(), reading.type->FindFieldByName("detail"));
		std::unique_ptr<pb::Message> ts = reading.make(
			reading.pool->FindMessageTypeByName("google.protobuf.Timestamp"));
		ts->GetReflection()->SetInt64(
			ts.get(), ts->GetDescriptor()->FindFieldByName("seconds"), 5);
		any->GetReflection()->SetString(
			any, any->GetDescriptor()->FindFieldByName("type_url"),
			"type.googleapis.com/google.protobuf.Timestamp");
		any->GetReflection()->SetString(
			any, any->GetDescriptor()->FindFieldByName("value"),
			ts->SerializeAsString());
		std::string bytes = m->SerializeAsString(), out;
		CHECK(!fr.PrintWire(reading.type, bytes.data(), bytes.size(), &out),
		      "wire printer took an Any");
		out.clear();
		CHECK(!fr.Print(*m, &out), "reflection printer took an Any of a "
					   "Timestamp");
		bool ok;
		std::string ref = lib_json(*m, &ok);
		const char *js;
		size_t jl;
		CHECK(ok && pbs_pb_to_json(reading.codec, bytes.data(),
					   bytes.size(), &js, &jl) == 0 &&
			      std::string(js, jl) == ref,
		      "fallback for an Any of a Timestamp: %s", ref.c_str());
		CHECK(ref.find("\"value\":\"1970-01-01T00:00:05Z\"") !=
			      std::string::npos,
		      "libprotobuf's form of an Any of a Timestamp: %s", ref.c_str());
		std::string mine;
		CHECK(!fr.Parse(reading.type, ref.data(), ref.size(), &mine),
		      "parser took an Any");
		check_parse(reading, nullptr, fr, ref, "any of a Timestamp");
	}
	// bytes that are not a message are refused
	{
		const char *js;
		size_t jl;
		CHECK(pbs_pb_to_json(reading.codec, "\x0a\x05" "ab", 4, &js,
				     &jl) == -1,
		      "truncated bytes printed");
		CHECK(pbs_pb_to_json(reading.codec, "\x72\x01\xff", 3, &js,
				     &jl) == -1,
		      "a string that is not UTF-8 printed");
	}

	fprintf(stderr, "check_pbjson: %ld checks, %d failures\n", checks,
		failures);
	return failures ? 1 : 0;
}
