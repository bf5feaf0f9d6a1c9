// SPDX-License-Identifier: MIT

// Command redis-worker is a Redis consumer-group worker for a stream that
// `pbring bridge to-redis` fills. It decodes each message generically: the
// entry's schema field names the hash pbring:schema:<hash>, whose fds is a
// FileDescriptorSet and type the message's full name (docs/REDIS.md), so
// nothing here knows the message type in advance.
//
//	go run . -redis redis://127.0.0.1:6379 -stream events -group workers \
//	    -consumer w1 [-json] [-count N]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// schemas caches message descriptors by schema hash, each loaded once.
type schemas struct {
	rdb   *redis.Client
	types map[string]protoreflect.MessageDescriptor
}

func (s *schemas) descriptor(ctx context.Context, hash string) (protoreflect.MessageDescriptor, error) {
	if md, ok := s.types[hash]; ok {
		return md, nil
	}
	h, err := s.rdb.HGetAll(ctx, "pbring:schema:"+hash).Result()
	if err != nil {
		return nil, err
	}
	if h["fds"] == "" || h["type"] == "" {
		return nil, fmt.Errorf("no schema pbring:schema:%s in Redis", hash)
	}
	var fds descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal([]byte(h["fds"]), &fds); err != nil {
		return nil, err
	}
	files, err := protodesc.NewFiles(&fds)
	if err != nil {
		return nil, err
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(h["type"]))
	if err != nil {
		return nil, err
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a message", h["type"])
	}
	s.types[hash] = md
	return md, nil
}

func main() {
	url := flag.String("redis", "redis://127.0.0.1:6379", "redis:// or unix:// URL")
	stream := flag.String("stream", "", "stream key")
	group := flag.String("group", "", "consumer group")
	consumer := flag.String("consumer", "", "consumer name")
	count := flag.Int("count", 0, "stop after N messages")
	timeout := flag.Duration("timeout", 0, "stop when nothing arrives for this long")
	asJSON := flag.Bool("json", false, "print each message as proto3 JSON")
	flag.Parse()
	if *stream == "" || *group == "" || *consumer == "" {
		fmt.Fprintln(os.Stderr, "redis-worker: -stream, -group and -consumer are required")
		os.Exit(2)
	}
	opts, err := redis.ParseURL(*url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "redis-worker:", err)
		os.Exit(2)
	}
	if err := run(opts, *stream, *group, *consumer, *count, *timeout, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "redis-worker:", err)
		os.Exit(1)
	}
}

func run(opts *redis.Options, stream, group, consumer string, count int,
	timeout time.Duration, asJSON bool) error {
	ctx := context.Background()
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		return err
	}
	s := &schemas{rdb: rdb, types: map[string]protoreflect.MessageDescriptor{}}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	done, bad := 0, 0
	idleSince := time.Now()
	start := "0" // own pending entries first (after a crash), then new ones
	for count == 0 || done < count {
		want := int64(256)
		if count > 0 && count-done < 256 {
			want = int64(count - done)
		}
		block := 100 * time.Millisecond
		if start == "0" {
			block = -1 // no BLOCK
		}
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group,
			Consumer: consumer, Streams: []string{stream, start},
			Count: want, Block: block}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		var msgs []redis.XMessage
		if len(res) > 0 {
			msgs = res[0].Messages
		}
		if len(msgs) == 0 {
			if start == "0" {
				start = ">"
				continue
			}
			if timeout > 0 && time.Since(idleSince) > timeout {
				break
			}
			continue
		}
		idleSince = time.Now()
		ids := make([]string, 0, len(msgs))
		for _, m := range msgs {
			ids = append(ids, m.ID)
			data, ok1 := m.Values["data"].(string)
			hash, ok2 := m.Values["schema"].(string)
			if !ok1 || !ok2 {
				bad++
				continue
			}
			md, err := s.descriptor(ctx, hash)
			if err != nil {
				return err
			}
			msg := dynamicpb.NewMessage(md)
			if err := proto.Unmarshal([]byte(data), msg); err != nil {
				return fmt.Errorf("entry %s: %w", m.ID, err)
			}
			if asJSON {
				b, err := protojson.Marshal(msg)
				if err != nil {
					return err
				}
				// bufio's errors stick: the Flush below reports them
				_, _ = out.Write(b)
				_ = out.WriteByte('\n')
			}
			done++
		}
		if err := rdb.XAck(ctx, stream, group, ids...).Err(); err != nil {
			return err
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "redis-worker: decoded %d messages, %d without data or schema\n", done, bad)
	if bad > 0 {
		return fmt.Errorf("%d entries without data or schema", bad)
	}
	return nil
}
