# SPDX-License-Identifier: MIT
"""The demo message, pbring.demo.v1.DeviceEvent, as every language's demo
tools send and check it (cli/demo/demo_event.c): the same fields, blob pattern
and JSON, so that any producer can be checked by any consumer.

- ``id`` = ``"<pid>-<k>"`` for producer thread k of process pid;
- ``seq`` counts from 0 per producer, ``status`` = seq % 3;
- ``sent_ns`` = CLOCK_MONOTONIC at send (``time.monotonic_ns()``);
- ``blob`` = --size bytes, byte i = (i * 131 + 7) & 0xff.
"""
from __future__ import annotations

import json
from typing import Any, Dict

from google.protobuf import json_format
from google.protobuf.message import Message

__all__ = ["blob_pattern", "canonical_json", "message_dict"]


def blob_pattern(n: int) -> bytes:
    """The demo blob of @n bytes: byte i is (i * 131 + 7) & 0xff."""
    return bytes((i * 131 + 7) & 0xFF for i in range(n))


def message_dict(msg: Message) -> Dict[str, Any]:
    """protobuf's canonical JSON mapping of @msg as a dict: lowerCamelCase
    names, 64-bit integers as strings, bytes in base64, defaults left out."""
    d: Dict[str, Any] = json_format.MessageToDict(msg)
    return d


def canonical_json(msg: Message) -> str:
    """Compact canonical proto3 JSON of @msg, byte for byte what the C
    command's ``demo_event_json()`` and Go's protojson write: fields in
    field-number order, no spaces, non-ASCII text as UTF-8, \\b \\f \\n \\r \\t
    short and other control characters as \\u00xx."""
    return json.dumps(json_format.MessageToDict(msg), separators=(",", ":"),
                      ensure_ascii=False)
