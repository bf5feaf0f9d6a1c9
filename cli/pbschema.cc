// SPDX-License-Identifier: MIT
//
// The C interface of pbschema.h over libprotobuf: canonical schema bytes
// (FORMAT.md §3.2) from a .proto or a FileDescriptorSet, proto3 JSON in
// and out of a ring's message type, and .proto text of a stored schema.
#include "pbschema.h"
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

namespace {

const char kTypeUrlPrefix[] = "type.googleapis.com";

// libprotobuf logs some refusals (a duplicate file in a database) to
// stderr; the command says everything in one line of its own.
void quiet_logs()
{
	static bool done;

	if (!done) {
		pb::SetLogHandler(nullptr);
		done = true;
	}
}

char *dup_str(const std::string &s)
{
	char *p = static_cast<char *>(malloc(s.size() + 1));

	if (p)
		memcpy(p, s.c_str(), s.size() + 1);
	return p;
}

int fail(char **err, int code, const std::string &msg)
{
	if (err)
		*err = dup_str(msg);
	return code;
}

// First error of a pool build: "FILE: MESSAGE".
class FirstPoolError : public pb::DescriptorPool::ErrorCollector {
      public:
	std::string first;

	void AddError(const std::string &filename, const std::string &element,
		      const pb::Message *descriptor, ErrorLocation location,
		      const std::string &message) override
	{
		(void)element;
		(void)descriptor;
		(void)location;
		if (first.empty())
			first = filename + ": " + message;
	}
};

// First error of a .proto compilation, as protoc prints it:
// "FILE:LINE:COLUMN: MESSAGE" (1-based), or "FILE: MESSAGE".
class FirstCompileError : public pb::compiler::MultiFileErrorCollector {
      public:
	std::string first;

	void AddError(const std::string &filename, int line, int column,
		      const std::string &message) override
	{
		if (!first.empty())
			return;
		if (line >= 0)
			first = filename + ":" + std::to_string(line + 1) +
				":" + std::to_string(column + 1) + ": " +
				message;
		else
			first = filename + ": " + message;
	}
};

// Deterministic serialization: fields in number order, map entries sorted.
bool serialize(const pb::Message &m, std::string *out)
{
	out->clear();
	pb::io::StringOutputStream os(out);
	pb::io::CodedOutputStream cos(&os);

	cos.SetSerializationDeterministic(true);
	return m.SerializeToCodedStream(&cos) && !cos.HadError();
}

// protoc --include_imports order: each file after its imports (depth
// first, in declaration order), each once; json_name on every field; no
// source_code_info.
// NOLINTNEXTLINE(misc-no-recursion): each file once (seen): depth <= files
void add_with_imports(const pb::FileDescriptor *f,
		      std::set<std::string> *seen, pb::FileDescriptorSet *out)
{
	if (!seen->insert(f->name()).second)
		return;
	for (int i = 0; i < f->dependency_count(); i++)
		add_with_imports(f->dependency(i), seen, out);
	pb::FileDescriptorProto *p = out->add_file();
	f->CopyTo(p);
	f->CopyJsonNameTo(p);
}

int canonical_of(const pb::FileDescriptor *f, uint8_t **out, size_t *out_len,
		 char **err)
{
	pb::FileDescriptorSet set;
	std::set<std::string> seen;
	std::string bytes;

	add_with_imports(f, &seen, &set);
	if (!serialize(set, &bytes))
		return fail(err, PBS_ERR_SCHEMA, "cannot serialize the schema");
	*out = static_cast<uint8_t *>(malloc(bytes.size() ? bytes.size() : 1));
	if (!*out)
		return fail(err, PBS_ERR_SCHEMA, "out of memory");
	memcpy(*out, bytes.data(), bytes.size());
	*out_len = bytes.size();
	return 0;
}

// NOLINTNEXTLINE(misc-no-recursion): depth <= protobuf parse limit (100)
void list_messages(const std::string &prefix, const pb::DescriptorProto &m,
		   std::vector<std::string> *out)
{
	if (m.options().map_entry())
		return;
	std::string name = prefix.empty() ? m.name() : prefix + "." + m.name();
	out->push_back(name);
	for (const auto &n : m.nested_type())
		list_messages(name, n, out);
}

std::string join(const std::vector<std::string> &v)
{
	std::string s;

	for (const auto &x : v)
		s += (s.empty() ? "" : ", ") + x;
	return s.empty() ? "none" : s;
}

std::string no_type(const std::string &type, const std::string &path,
		    const std::vector<std::string> &types)
{
	return "--type: no message '" + type + "' in " + path +
	       " (its messages: " + join(types) + ")";
}

bool read_file(const char *path, std::string *out, char **err)
{
	std::ifstream in(path, std::ios::binary);

	if (!in) {
		fail(err, 0,
		     std::string("--schema: cannot read '") + path +
			     "': " + strerror(errno));
		return false;
	}
	std::ostringstream ss;
	ss << in.rdbuf();
	*out = ss.str();
	return true;
}

std::string abs_path(const std::string &p)
{
	char buf[PATH_MAX];

	return realpath(p.c_str(), buf) ? std::string(buf) : p;
}

/* Without -I, the import root a .proto laid out by its package implies:
 * proto/acme/telemetry/v1/reading.proto of package acme.telemetry.v1 is
 * under proto/, as protoc -I proto would name it. "" if it is not laid
 * out so. */
std::string package_root(const std::string &file, const std::string &dir)
{
	std::string text, pkg;
	size_t at, end;

	if (!read_file(file.c_str(), &text, nullptr))
		return "";
	for (at = text.find("package"); at != std::string::npos;
	     at = text.find("package", at + 1)) {
		size_t bol = text.rfind('\n', at);

		bol = bol == std::string::npos ? 0 : bol + 1;
		if (text.find_first_not_of(" \t", bol) != at)
			continue; /* not at the start of a line */
		end = text.find(';', at);
		if (end == std::string::npos)
			return "";
		pkg = text.substr(at + 7, end - at - 7);
		pkg.erase(0, pkg.find_first_not_of(" \t"));
		pkg.erase(pkg.find_last_not_of(" \t") + 1);
		break;
	}
	if (pkg.empty())
		return "";
	std::replace(pkg.begin(), pkg.end(), '.', '/');
	pkg = "/" + pkg + "/";
	if (dir.size() < pkg.size() ||
	    dir.compare(dir.size() - pkg.size(), pkg.size(), pkg))
		return "";
	return dir.substr(0, dir.size() - pkg.size() + 1);
}

int canonical_from_proto(const char *path, const char *type,
			 const char *const *dirs, size_t ndirs, uint8_t **out,
			 size_t *out_len, char **err)
{
	pb::compiler::DiskSourceTree tree;
	std::string file = abs_path(path), virt, shadow;
	std::string dir = file.substr(0, file.rfind('/') + 1);
	std::string root = ndirs ? "" : package_root(file, dir);

	for (size_t i = 0; i < ndirs; i++)
		tree.MapPath("", abs_path(dirs[i]));
	if (!root.empty())
		tree.MapPath("", root);
	tree.MapPath("", dir.empty() ? "/" : dir);
	tree.MapPath("", "/usr/include");
	switch (tree.DiskFileToVirtualFile(file, &virt, &shadow)) {
	case pb::compiler::DiskSourceTree::SUCCESS:
		break;
	case pb::compiler::DiskSourceTree::SHADOWED:
		return fail(err, PBS_ERR_SCHEMA,
			    std::string(path) + ": shadowed by " + shadow +
				    " in the -I directories");
	default:
		return fail(err, PBS_ERR_READ,
			    std::string("--schema: cannot read '") + path +
				    "'");
	}

	FirstCompileError errors;
	pb::compiler::Importer importer(&tree, &errors);
	const pb::FileDescriptor *f = importer.Import(virt);

	if (!f)
		return fail(err, PBS_ERR_SCHEMA,
			    errors.first.empty()
				    ? std::string(path) + ": does not compile"
				    : errors.first);
	const pb::Descriptor *d = importer.pool()->FindMessageTypeByName(type);
	if (!d || d->file() != f) {
		pb::FileDescriptorProto p;
		std::vector<std::string> types;

		f->CopyTo(&p);
		for (const auto &m : p.message_type())
			list_messages(p.package(), m, &types);
		return fail(err, PBS_ERR_TYPE, no_type(type, path, types));
	}
	return canonical_of(f, out, out_len, err);
}

// A pool over the files of a set, which may come in any order.
struct SetPool {
	pb::SimpleDescriptorDatabase db;
	FirstPoolError errors;
	pb::DescriptorPool pool;

	SetPool() : pool(&db, &errors) {}

	// false if a file is in the set twice with different contents
	bool add(const pb::FileDescriptorSet &set)
	{
		std::set<std::string> names;

		for (const auto &f : set.file())
			if (names.insert(f.name()).second && !db.Add(f))
				return false;
		return true;
	}
};

int canonical_from_set(const char *path, const char *type, uint8_t **out,
		       size_t *out_len, char **err)
{
	std::string bytes;
	pb::FileDescriptorSet set;
	std::vector<std::string> types;

	if (!read_file(path, &bytes, err))
		return PBS_ERR_READ;
	if (!set.ParseFromString(bytes) || set.file_size() == 0)
		return fail(err, PBS_ERR_READ,
			    std::string("--schema: '") + path +
				    "' is not a serialized FileDescriptorSet "
				    "(a .proto file's name ends in .proto)");
	for (const auto &f : set.file())
		for (const auto &m : f.message_type())
			list_messages(f.package(), m, &types);
	bool known = false;
	for (const auto &t : types)
		known = known || t == type;
	if (!known)
		return fail(err, PBS_ERR_TYPE, no_type(type, path, types));

	SetPool sp;
	if (!sp.add(set))
		return fail(err, PBS_ERR_SCHEMA,
			    std::string(path) +
				    ": a file or symbol is defined twice");
	const pb::Descriptor *d = sp.pool.FindMessageTypeByName(type);
	if (!d)
		return fail(err, PBS_ERR_SCHEMA,
			    sp.errors.first.empty()
				    ? std::string(path) + ": " + type +
					      " does not build"
				    : sp.errors.first);
	return canonical_of(d->file(), out, out_len, err);
}

bool ends_with(const std::string &s, const std::string &tail)
{
	return s.size() >= tail.size() &&
	       s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// protoc's default json_name: lowerCamelCase of the field name.
std::string default_json_name(const std::string &name)
{
	std::string r;
	bool up = false;

	for (char c : name) {
		if (c == '_') {
			up = true;
		} else if (up) {
			r.push_back(c >= 'a' && c <= 'z' ? char(c - 'a' + 'A')
							 : c);
			up = false;
		} else {
			r.push_back(c);
		}
	}
	return r;
}

// Drop json_name where it is the default, so that the .proto text shows
// only the json_name options someone wrote.
// NOLINTNEXTLINE(misc-no-recursion): depth <= protobuf parse limit (100)
void strip_default_json(pb::DescriptorProto *m)
{
	for (auto &f : *m->mutable_field())
		if (f.json_name() == default_json_name(f.name()))
			f.clear_json_name();
	for (auto &f : *m->mutable_extension())
		if (f.json_name() == default_json_name(f.name()))
			f.clear_json_name();
	for (auto &n : *m->mutable_nested_type())
		strip_default_json(&n);
}

// The JSON converter asks its resolver for every message and enum type
// it meets, on every call, and the pool's resolver builds each answer
// from the descriptors anew (options through reflection): most of the
// cost of a small message. The types of a ring never change: keep them.
class CachingTypeResolver : public pb::util::TypeResolver {
      public:
	explicit CachingTypeResolver(pb::util::TypeResolver *inner)
		: inner_(inner)
	{
	}

	pb::util::Status ResolveMessageType(const std::string &url,
					    pb::Type *type) override
	{
		auto it = types_.find(url);

		if (it == types_.end()) {
			pb::Type t;
			pb::util::Status st = inner_->ResolveMessageType(url, &t);

			if (!st.ok())
				return st;
			it = types_.emplace(url, std::move(t)).first;
		}
		*type = it->second;
		return pb::util::Status();
	}

	pb::util::Status ResolveEnumType(const std::string &url,
					 pb::Enum *enum_type) override
	{
		auto it = enums_.find(url);

		if (it == enums_.end()) {
			pb::Enum e;
			pb::util::Status st = inner_->ResolveEnumType(url, &e);

			if (!st.ok())
				return st;
			it = enums_.emplace(url, std::move(e)).first;
		}
		*enum_type = it->second;
		return pb::util::Status();
	}

      private:
	std::unique_ptr<pb::util::TypeResolver> inner_;
	std::map<std::string, pb::Type> types_;
	std::map<std::string, pb::Enum> enums_;
};

} // namespace


struct pbs_codec {
	SetPool sp;
	pb::DynamicMessageFactory factory;
	std::unique_ptr<pb::util::TypeResolver> resolver;
	std::unique_ptr<pb::Message> msg;
	std::string url, in, bin, out, json, reason;
	pb::util::JsonParseOptions popts;
	pb::util::JsonPrintOptions jopts;
	// JSON over reflection (pbjson.h); libprotobuf's converter below
	// for what it leaves.
	std::unique_ptr<pbjson::Codec> fast;
};

extern "C" int pbs_canonical(const char *path, const char *type,
			     const char *const *dirs, size_t ndirs,
			     uint8_t **out, size_t *out_len, char **err)
{
	quiet_logs();
	if (access(path, R_OK))
		return fail(err, PBS_ERR_READ,
			    std::string("--schema: cannot read '") + path +
				    "': " + strerror(errno));
	if (ends_with(path, ".proto"))
		return canonical_from_proto(path, type, dirs, ndirs, out,
					    out_len, err);
	return canonical_from_set(path, type, out, out_len, err);
}

extern "C" int pbs_codec_open(const void *fds, size_t len, const char *type,
			      struct pbs_codec **out, char **err)
{
	std::unique_ptr<pbs_codec> c(new pbs_codec);
	pb::FileDescriptorSet set;

	quiet_logs();
	if (!set.ParseFromArray(fds, int(len)))
		return fail(err, -1,
			    "stored schema is not a FileDescriptorSet");
	if (!c->sp.add(set))
		return fail(err, -1,
			    "stored schema defines a file or symbol twice");
	const pb::Descriptor *d = c->sp.pool.FindMessageTypeByName(type);
	if (!d)
		return fail(err, -1,
			    c->sp.errors.first.empty()
				    ? std::string("stored schema has no "
						  "message ") +
					      type
				    : "stored schema: " + c->sp.errors.first);
	c->resolver.reset(new CachingTypeResolver(
		pb::util::NewTypeResolverForDescriptorPool(kTypeUrlPrefix,
							   &c->sp.pool)));
	c->msg.reset(c->factory.GetPrototype(d)->New());
	c->fast.reset(new pbjson::Codec(&c->factory));
	c->url = std::string(kTypeUrlPrefix) + "/" + d->full_name();
	*out = c.release();
	return 0;
}

extern "C" void pbs_codec_close(struct pbs_codec *c)
{
	delete c;
}

extern "C" int pbs_json_to_pb(struct pbs_codec *c, const char *json,
			      size_t len, const void **out, size_t *out_len,
			      const char **reason)
{
	// The common forms straight into the message; the rest, errors
	// included, through libprotobuf's converter as before.
	if (c->fast->Parse(c->msg->GetDescriptor(), json, len, &c->out)) {
		*out = c->out.data();
		*out_len = c->out.size();
		return 0;
	}
	c->bin.clear();
	pb::util::Status st;
	try {
		st = pb::util::JsonToBinaryString(c->resolver.get(), c->url,
						  pb::StringPiece(json, len),
						  &c->bin, c->popts);
	} catch (const pb::FatalException &e) {
		// libprotobuf 3.21 trips over some inputs with an internal
		// CHECK (an Any of a Duration with a field after its "value"
		// aborts the process): refuse the line instead.
		st = pb::util::Status(pb::util::StatusCode::kInternal,
				      std::string("libprotobuf's JSON parser "
						  "failed: ") +
					      e.message());
	}
	if (!st.ok()) {
		// One line: the parser may add the input and a caret below;
		// and printable (it may quote a key with a NUL in it).
		c->reason = std::string(st.message());
		c->reason = c->reason.substr(0, c->reason.find('\n'));
		for (char &ch : c->reason)
			if ((unsigned char)ch < 0x20 || ch == 0x7f)
				ch = '?';
		if (c->reason.empty())
			c->reason = "not a JSON object of the ring's type";
		*reason = c->reason.c_str();
		return -1;
	}
	// Through the message: checked as the type (UTF-8 of strings), and
	// serialized as protobuf does it, fields in number order.
	c->msg->Clear();
	if (!c->msg->ParseFromString(c->bin) || !serialize(*c->msg, &c->out)) {
		c->reason = "not a valid " + c->msg->GetTypeName() +
			    " (a string that is not UTF-8?)";
		*reason = c->reason.c_str();
		return -1;
	}
	*out = c->out.data();
	*out_len = c->out.size();
	return 0;
}

extern "C" int pbs_pb_check(struct pbs_codec *c, const void *data, size_t len)
{
	c->msg->Clear();
	return c->msg->ParseFromArray(data, int(len)) ? 0 : -1;
}

extern "C" int pbs_pb_to_json(struct pbs_codec *c, const void *data,
			      size_t len, const char **json, size_t *json_len)
{
	// Canonical bytes straight to JSON; the rest through the message,
	// then (Any of a well-known type...) libprotobuf's converter.
	if (c->fast->PrintWire(c->msg->GetDescriptor(), data, len, &c->json)) {
		*json = c->json.c_str();
		*json_len = c->json.size();
		return 0;
	}
	if (pbs_pb_check(c, data, len))
		return -1;
	c->json.clear();
	if (c->fast->Print(*c->msg, &c->json)) {
		*json = c->json.c_str();
		*json_len = c->json.size();
		return 0;
	}
	c->in.assign(static_cast<const char *>(data), len);
	c->json.clear();
	try {
		if (!pb::util::BinaryToJsonString(c->resolver.get(), c->url,
						  c->in, &c->json, c->jopts)
			     .ok())
			return -1;
	} catch (const pb::FatalException &) {
		return -1; // an internal CHECK of libprotobuf's: no JSON
	}
	*json = c->json.c_str();
	*json_len = c->json.size();
	return 0;
}

extern "C" int pbs_proto_text(const void *fds, size_t len, char **out,
			      char **err)
{
	pb::FileDescriptorSet set;
	SetPool sp;
	std::string text;

	quiet_logs();
	if (!set.ParseFromArray(fds, int(len)))
		return fail(err, -1,
			    "stored schema is not a FileDescriptorSet");
	for (auto &f : *set.mutable_file()) {
		for (auto &m : *f.mutable_message_type())
			strip_default_json(&m);
		for (auto &x : *f.mutable_extension())
			if (x.json_name() == default_json_name(x.name()))
				x.clear_json_name();
	}
	if (!sp.add(set))
		return fail(err, -1,
			    "stored schema defines a file or symbol twice");
	for (const auto &fp : set.file()) {
		const pb::FileDescriptor *f = sp.pool.FindFileByName(fp.name());

		if (!f)
			return fail(err, -1,
				    "stored schema: " +
					    (sp.errors.first.empty()
						     ? fp.name() +
							       " does not build"
						     : sp.errors.first));
		std::string body = f->DebugString();

		while (!body.empty() && body.back() == '\n')
			body.pop_back();
		text += (text.empty() ? "" : "\n") + std::string("// file: ") +
			fp.name() + "\n" + body + "\n";
	}
	*out = dup_str(text);
	return *out ? 0 : fail(err, -1, "out of memory");
}
