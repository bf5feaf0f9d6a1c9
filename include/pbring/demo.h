/* SPDX-License-Identifier: MIT */
/*
 * pbring/demo.h: the demo schema (proto/pbring/demo/v1/device.proto) that
 * `pbring create --schema demo`, the demo, the benches and the tests use.
 */
#ifndef PBRING_DEMO_H
#define PBRING_DEMO_H

#include "pbring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The demo schema (proto/pbring/demo/v1/device.proto). */
#define PBR_DEMO_DEVICE_EVENT "pbring.demo.v1.DeviceEvent"
#define PBR_DEMO_SYNC_ACK "pbring.demo.v1.SyncAck"
#define PBR_DEMO_MSG_TYPE PBR_DEMO_DEVICE_EVENT /* what demo rings carry */

/**
 * The demo schema's serialized FileDescriptorSet (protoc
 * --descriptor_set_out --include_imports, embedded at build time; static
 * storage), shaped for pbr_create_opts: pbr_demo_schema(&o.schema,
 * &o.schema_len), then o.schema_hash = pbr_schema_hash(o.schema,
 * o.schema_len).
 */
PBR_API void pbr_demo_schema(const void **fds, uint32_t *len);

#ifdef __cplusplus
}
#endif

#endif /* PBRING_DEMO_H */
