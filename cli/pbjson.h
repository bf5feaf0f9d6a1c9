// SPDX-License-Identifier: MIT
//
// proto3 JSON of a message straight over reflection, for the command's
// typed rings (cli/pbschema.h): a printer whose output is byte for byte
// what libprotobuf 3.21's util::MessageToJsonString prints with default
// options, and a parser that accepts a strict subset of what
// util::JsonStringToMessage accepts, giving the same message.
//
// Both answer false for what they leave to libprotobuf's converter (the
// caller then runs it for that one message): the printer for the rare
// forms listed in pbschema.cc (an Any holding a well-known type, a
// FieldMask, values libprotobuf refuses to print...), the parser for
// anything outside its strict subset, errors included, so that
// libprotobuf both decides and words every refusal.
//
// C++ only, for pbschema.cc and its tests; implemented in pbjson.cc.
#ifndef PBR_CLI_PBJSON_H
#define PBR_CLI_PBJSON_H

#include <stddef.h>

#include <memory>
#include <string>

#include <google/protobuf/message.h>

namespace pbjson
{

class Codec
{
      public:
	// @factory makes the payloads of Any (types of the message's pool).
	explicit Codec(google::protobuf::MessageFactory *factory);
	~Codec();
	Codec(const Codec &) = delete;
	Codec &operator=(const Codec &) = delete;

	// Appends the JSON of @m to *out; false: left to libprotobuf (*out
	// then holds a partial text).
	bool Print(const google::protobuf::Message &m, std::string *out);

	// The message of type @d in @len bytes at @data as JSON, to *out
	// (what ParseFromArray then Print() would give); false: left to
	// them (the bytes are not canonical, or not a message at all).
	bool PrintWire(const google::protobuf::Descriptor *d, const void *data,
		       size_t len, std::string *out);

	// @len bytes of JSON as a message of type @d, to *out: its bytes as
	// a deterministic serialization of what JsonStringToMessage gives.
	// false: left to libprotobuf.
	bool Parse(const google::protobuf::Descriptor *d, const char *json,
		   size_t len, std::string *out);

	struct Impl;

      private:
	std::unique_ptr<Impl> impl_;
};

} // namespace pbjson

#endif /* PBR_CLI_PBJSON_H */
