/* SPDX-License-Identifier: MIT */
/*
 * A small MCAP writer and summary reader for `pbring record` and `pbring
 * info` (https://mcap.dev/spec): messages go into zstd chunks of about
 * MCAP_CHUNK bytes, each followed by its message indexes; closing writes
 * DataEnd, the summary (schemas, channels, statistics, chunk indexes),
 * the summary offsets and the footer. Buffers grow to the largest chunk
 * and are reused: nothing is allocated per message.
 */
#ifndef PBR_CLI_MCAP_H
#define PBR_CLI_MCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MCAP_CHUNK (1u << 20) /* uncompressed bytes per chunk, about */
#define MCAP_CHANNELS 64      /* channels (and schemas) per file */
/* The largest chunk `info` decompresses (ours are about MCAP_CHUNK, or one
 * message larger than that): a bound on what a hostile file can make it
 * allocate. */
#define MCAP_CHUNK_READ_MAX (256ull << 20)

/* A growable byte buffer, reused. */
struct mcap_buf {
	uint8_t *p;
	size_t len, cap;
};

struct mcap_channel {
	uint16_t id;
	const char *topic, *schema_name;
	const void *schema;
	size_t schema_len;
	uint64_t count;	       /* messages in the file */
	uint64_t good_count;   /* of them, in complete chunks */
	struct mcap_buf index; /* this chunk's (log_time, offset) pairs */
	uint64_t index_offset; /* file offset of its MessageIndex record */
};

struct mcap_writer {
	int fd;
	int err;       /* first write error (errno), sticky */
	uint64_t off;  /* bytes written to the file */
	uint64_t good; /* end of the last complete chunk + indexes */
	struct mcap_channel ch[MCAP_CHANNELS];
	unsigned nch;
	size_t chunk_target; /* flush a chunk at this many bytes */
	struct mcap_buf chunk, zbuf, rec,
		chunk_idx;		 /* chunk_idx: ChunkIndexes */
	uint64_t chunk_start, chunk_end; /* log times in the chunk */
	uint64_t start, end;		 /* log times in the file */
	uint64_t messages;
	uint32_t chunks;
	void *zctx; /* ZSTD_CCtx */
};

/* Start @path: 0 or -errno. Channels are added before the first message;
 * @chunk_target 0 means MCAP_CHUNK. */
int mcap_open(struct mcap_writer *w, const char *path, size_t chunk_target);
/* One channel (topic @topic, message_encoding "protobuf") with its own
 * schema (encoding "protobuf", @schema_name, the FileDescriptorSet):
 * returns its id, or -ENOSPC. The strings and bytes must outlive @w. */
int mcap_add_channel(struct mcap_writer *w, const char *topic,
		     const char *schema_name, const void *schema,
		     size_t schema_len);
/* Write the header, schemas and channels: 0 or -errno. */
int mcap_begin(struct mcap_writer *w);
/* Append one message to the chunk in hand (flushed when full). Returns
 * 0 or -errno (a write error: the file is closed valid by mcap_close). */
int mcap_message(struct mcap_writer *w, unsigned ch, uint32_t seq,
		 uint64_t log_time, const void *data, size_t len);
/* Bytes the chunk in hand takes uncompressed. */
size_t mcap_pending(const struct mcap_writer *w);
/* At most how many bytes closing adds besides the chunk in hand (the
 * summary, the footer): for --max-size. */
uint64_t mcap_tail(const struct mcap_writer *w);
/* Compress and write the chunk in hand: 0 or -errno. */
int mcap_flush(struct mcap_writer *w);
/* Flush, write the summary and the footer, close: 0 or -errno. After a
 * write error the file is cut back to its last complete chunk and closed
 * with a DataEnd and a footer (no summary) if the disk allows. Frees the
 * buffers either way. */
int mcap_close(struct mcap_writer *w);

/* What `pbring info` reports of a file. */
struct mcap_info {
	uint64_t size, messages, start, end;
	uint32_t chunks;
	char compression[16];
	bool summary;	   /* read from the summary section */
	bool truncated;	   /* scanned, and the file ends mid-record */
	bool no_chunks;	   /* reading a chunk or the summary: none may nest */
	uint64_t readable; /* truncated: end of the last complete record */
	unsigned nch;
	struct {
		uint16_t id, schema_id;
		char topic[256], schema[256];
		uint64_t count;
	} ch[MCAP_CHANNELS];
};

/* Read @path's summary, or scan it: 0, -ENOENT etc. (open), -EPROTO (not
 * an MCAP file), -EBADMSG (corrupt), or 0 with info->truncated set. */
int mcap_read_info(const char *path, struct mcap_info *info);

/* --- reading messages: `pbring replay` and `pbring cat` ---------------- */

/* A schema or channel record of a file being read. */
struct mcap_rschema {
	uint16_t id;
	char name[256], encoding[32];
	uint8_t *data; /* malloc'd */
	size_t len;
};

struct mcap_rchannel {
	uint16_t id, schema_id;
	char topic[256], encoding[32];
	uint64_t last; /* log time of its latest message read (see below) */
};

/* One message; data is valid until the next mcap_reader_next(). */
struct mcap_msg {
	unsigned ch; /* index into mcap_reader.ch */
	uint32_t seq;
	uint64_t log_time; /* as recorded */
	uint64_t time;	   /* the merge key: see mcap_reader_next() */
	const uint8_t *data;
	size_t len;
};

/* A reader of the data section, front to back: zstd (or uncompressed)
 * chunks and top-level messages; schemas and channels as they come. */
struct mcap_reader {
	int fd;
	uint64_t size, at; /* file size; offset of the next record */
	unsigned nschema, nch;
	struct mcap_rschema schema[MCAP_CHANNELS];
	struct mcap_rchannel ch[MCAP_CHANNELS];
	struct mcap_buf rec, chunk; /* the record in hand; a chunk, unpacked */
	struct mcap_entry {
		uint64_t time, off;
	} * ent; /* the chunk's messages in the order they are given */
	size_t nent, ient, capent;
	uint64_t messages; /* given so far */
	int err;	   /* sticky: the error next() returned */
	bool ended;	   /* reached DataEnd or the footer */
};

/* Open @path: 0, -errno (open), -EPROTO (not MCAP). */
int mcap_reader_open(struct mcap_reader *r, const char *path);
/* Start again from the first record (for --loop): 0 or -errno. */
int mcap_reader_rewind(struct mcap_reader *r);
/* The next message: 1 with *m, 0 at the end of the data section, or
 * -EPIPE (the file ends mid-record: cut short), -EBADMSG (corrupt: a
 * record that does not parse, a bad chunk, a message on an unknown
 * channel), -ENOSPC (more than MCAP_CHANNELS channels or schemas),
 * -ENOMEM, -EIO. Messages come in file order, except that those of one
 * chunk are merged by log time: each channel's messages keep their order,
 * ordered among the other channels' by m->time, the largest log time of
 * the channel so far (equal to log_time unless a channel's own times go
 * back, as several producers on one ring can make them). */
int mcap_reader_next(struct mcap_reader *r, struct mcap_msg *m);
/* The schema of channel @ch, or NULL if it has none. */
const struct mcap_rschema *mcap_reader_schema(const struct mcap_reader *r,
					      unsigned ch);
void mcap_reader_close(struct mcap_reader *r);

#endif /* PBR_CLI_MCAP_H */
