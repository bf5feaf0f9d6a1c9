/* SPDX-License-Identifier: MIT */
/*
 * Protobuf schemas for the `pbring` command: a small C interface over
 * Debian's libprotobuf (C++), which is the reference implementation of
 * descriptors, .proto compilation and protobuf's JSON mapping. Only the
 * command links it; libpbring stays C.
 *
 * Strings returned through `char **err` are malloc'd one-line messages
 * (free them with free()); pointers returned through `const ... **` stay
 * valid until the next call on the same object.
 */
#ifndef PBR_CLI_PBSCHEMA_H
#define PBR_CLI_PBSCHEMA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What pbs_canonical() could not do. */
#define PBS_ERR_READ 1	 /* FILE cannot be read, or is not a schema */
#define PBS_ERR_SCHEMA 2 /* does not compile, or lacks a dependency */
#define PBS_ERR_TYPE 3	 /* no message TYPE in it */

/*
 * The canonical schema bytes (FORMAT.md §3.2) of message @type from @path:
 * a serialized FileDescriptorSet, or a .proto file (name ending in
 * ".proto") compiled in process with imports found under @dirs (in
 * order), then the file's own directory, then /usr/include (for
 * google/protobuf/). Returns 0 with *out (malloc'd) and *out_len, or a
 * PBS_ERR_* with *err.
 */
int pbs_canonical(const char *path, const char *type, const char *const *dirs,
		  size_t ndirs, uint8_t **out, size_t *out_len, char **err);

/* A ring's message type and its schema, for JSON in and out. */
struct pbs_codec;

/* 0, or -1 with *err (the schema does not build, or lacks @type). */
int pbs_codec_open(const void *fds, size_t len, const char *type,
		   struct pbs_codec **out, char **err);
void pbs_codec_close(struct pbs_codec *c);

/* One proto3 JSON object (@len bytes, no NUL needed) to the serialized
 * message (deterministic: fields in number order, map entries sorted):
 * 0 with *out, *out_len; or -1 with *reason. Accepts what libprotobuf's
 * JsonStringToMessage accepts with default options: the common forms
 * are parsed here (cli/pbjson.h), the rest, refusals included, by it. */
int pbs_json_to_pb(struct pbs_codec *c, const char *json, size_t len,
		   const void **out, size_t *out_len, const char **reason);

/* Does @len bytes at @data parse as the message? 0, or -1. */
int pbs_pb_check(struct pbs_codec *c, const void *data, size_t len);

/* The message at @data as compact proto3 JSON (NUL-terminated): 0 with
 * *json and *json_len, or -1 (it does not parse, or has no JSON form).
 * The text is libprotobuf's MessageToJsonString's, byte for byte: printed
 * here (cli/pbjson.h), or by it for the rare forms left to it. */
int pbs_pb_to_json(struct pbs_codec *c, const void *data, size_t len,
		   const char **json, size_t *json_len);

/* .proto text of every file of a FileDescriptorSet, in its order, each
 * after a "// file: NAME" line: 0 with *out (malloc'd), or -1 with *err. */
int pbs_proto_text(const void *fds, size_t len, char **out, char **err);

#ifdef __cplusplus
}
#endif

#endif /* PBR_CLI_PBSCHEMA_H */
