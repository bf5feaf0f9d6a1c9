// SPDX-License-Identifier: MIT
//! iceoryx2 as a pbring-bench baseline: a C ABI over one publish-subscribe
//! service of `[u8]` slices (plus, in block mode, an event service whose
//! notifier wakes the readers), used by bench/tr_iceoryx2.c.
//!
//! The producer loans a slice of exactly the message size, copies the
//! message into it (stamp and sequence in the first 16 bytes) and sends;
//! the reader takes a sample, reads those 16 bytes in place and releases
//! it: what pbring-raw and tr_iceoryx.c do.
//!
//! Lossless like a gating pbring reader: no safe overflow, and a publisher
//! whose subscriber's buffer is full retries until it is delivered
//! (`BackpressureStrategy::RetryUntilDelivered`). History 0.
//!
//! Every file goes under the root directory and every shared-memory
//! object gets the prefix the caller passes, so that the harness removes
//! all of them after a case (a fresh `Config`, no config file is read).

use core::ffi::{c_char, c_int, c_void, CStr};
use core::ptr;
use core::time::Duration;
use std::time::Instant;

use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory as PubSubFactory;

const EAGAIN: c_int = 11;
const EIO: c_int = 5;
const EINVAL: c_int = 22;
const EBADMSG: c_int = 74;
const ETIMEDOUT: c_int = 110;

/// The stamp and sequence number at the start of every message.
const HEADER: usize = 16;
/// How long open waits for the other side of the service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of samples a subscriber's buffer may hold (the publisher's data
/// segment is sized for full buffers): at most 256 and at least 2 samples.
const BUFFER_BYTES: usize = 64 << 20;

type Svc = ipc::Service;

enum Port {
    Pub {
        publisher: Publisher<Svc, [u8], ()>,
        notifier: Option<Notifier<Svc>>,
    },
    Sub {
        subscriber: Subscriber<Svc, [u8], ()>,
        listener: Option<Listener<Svc>>,
    },
}

/// One end of a channel. Fields drop in order: ports before services,
/// services before the node.
pub struct Handle {
    port: Port,
    _service: PubSubFactory<Svc, [u8], ()>,
    _events: Option<iceoryx2::service::port_factory::event::PortFactory<Svc>>,
    _node: Node<Svc>,
}

fn set_err(err: *mut c_char, len: usize, msg: &str) {
    if err.is_null() || len == 0 {
        return;
    }
    let n = msg.len().min(len - 1);
    // SAFETY: the caller passes a buffer of len bytes.
    unsafe {
        ptr::copy_nonoverlapping(msg.as_ptr(), err as *mut u8, n);
        *err.add(n) = 0;
    }
}

fn buffer_size(max_bytes: usize, nread: usize) -> usize {
    (BUFFER_BYTES / max_bytes.max(1) / (nread + 2)).clamp(2, 256)
}

struct Params<'a> {
    root: &'a str,
    prefix: &'a str,
    service: &'a str,
    reader: bool,
    max_bytes: usize,
    nprod: usize,
    nread: usize,
    block: bool,
}

fn config(p: &Params) -> Result<Config, String> {
    let mut cfg = Config::default();
    let root = Path::new(p.root.as_bytes()).map_err(|e| format!("root {}: {e:?}", p.root))?;
    cfg.global.set_root_path(&root);
    cfg.global.prefix =
        FileName::new(p.prefix.as_bytes()).map_err(|e| format!("prefix {}: {e:?}", p.prefix))?;
    Ok(cfg)
}

/// Both sides create or open the service with the same settings; the
/// loser of a creation race retries.
fn open_service(node: &Node<Svc>, p: &Params) -> Result<PubSubFactory<Svc, [u8], ()>, String> {
    let name = ServiceName::new(p.service).map_err(|e| format!("{}: {e:?}", p.service))?;
    let start = Instant::now();
    loop {
        let r = node
            .service_builder(&name)
            .publish_subscribe::<[u8]>()
            .enable_safe_overflow(false)
            .history_size(0)
            .subscriber_max_buffer_size(buffer_size(p.max_bytes, p.nread))
            .subscriber_max_borrowed_samples(1)
            .max_publishers(p.nprod)
            .max_subscribers(p.nread)
            .open_or_create();
        match r {
            Ok(s) => return Ok(s),
            Err(e) if start.elapsed() > CONNECT_TIMEOUT => {
                return Err(format!("service {}: {e:?}", p.service))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn open_events(
    node: &Node<Svc>,
    p: &Params,
) -> Result<iceoryx2::service::port_factory::event::PortFactory<Svc>, String> {
    let svc = format!("{}/ev", p.service);
    let name = ServiceName::new(&svc).map_err(|e| format!("{svc}: {e:?}"))?;
    let start = Instant::now();
    loop {
        match node.service_builder(&name).event().open_or_create() {
            Ok(s) => return Ok(s),
            Err(e) if start.elapsed() > CONNECT_TIMEOUT => {
                return Err(format!("event service {svc}: {e:?}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Polls until cond holds, CONNECT_TIMEOUT at most.
fn wait_for<F: Fn() -> bool>(cond: F) -> Result<(), ()> {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > CONNECT_TIMEOUT {
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn open(p: &Params) -> Result<Handle, (c_int, String)> {
    let io = |s: String| (-EIO, s);
    let cfg = config(p).map_err(|s| (-EINVAL, s))?;
    let node = NodeBuilder::new()
        .config(&cfg)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<Svc>()
        .map_err(|e| io(format!("node: {e:?}")))?;
    let service = open_service(&node, p).map_err(io)?;
    let events = if p.block {
        Some(open_events(&node, p).map_err(io)?)
    } else {
        None
    };
    let port = if p.reader {
        // The listener first: once the publisher sees this subscriber,
        // its notifications reach the reader.
        let listener = match &events {
            Some(ev) => Some(
                ev.listener_builder()
                    .create()
                    .map_err(|e| io(format!("listener: {e:?}")))?,
            ),
            None => None,
        };
        let subscriber = service
            .subscriber_builder()
            .buffer_size(buffer_size(p.max_bytes, p.nread))
            .create()
            .map_err(|e| io(format!("subscriber: {e:?}")))?;
        // Connect to every publisher now: a publisher whose subscriber
        // is not connected yet drops what does not fit in the buffer
        // rather than wait (NoConnectedReceiverAndBufferIsFull).
        wait_for(|| service.dynamic_config().number_of_publishers() >= p.nprod)
            .map_err(|_| (-ETIMEDOUT, "no publisher connected".into()))?;
        subscriber
            .has_samples() // updates the connections
            .map_err(|e| io(format!("connect: {e:?}")))?;
        Port::Sub {
            subscriber,
            listener,
        }
    } else {
        let publisher = service
            .publisher_builder()
            .initial_max_slice_len(p.max_bytes)
            .allocation_strategy(AllocationStrategy::Static)
            .max_loaned_samples(1)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(|e| io(format!("publisher: {e:?}")))?;
        let notifier = match &events {
            Some(ev) => Some(
                ev.notifier_builder()
                    .create()
                    .map_err(|e| io(format!("notifier: {e:?}")))?,
            ),
            None => None,
        };
        // Messages sent before a subscriber is there reach nobody: wait
        // for all of them, then connect.
        wait_for(|| service.dynamic_config().number_of_subscribers() >= p.nread)
            .map_err(|_| (-ETIMEDOUT, "no subscriber connected".into()))?;
        publisher
            .update_connections()
            .map_err(|e| io(format!("connect: {e:?}")))?;
        Port::Pub {
            publisher,
            notifier,
        }
    };
    Ok(Handle {
        port,
        _service: service,
        _events: events,
        _node: node,
    })
}

unsafe fn str_arg<'a>(s: *const c_char) -> Option<&'a str> {
    if s.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string from the caller.
    unsafe { CStr::from_ptr(s) }.to_str().ok()
}

/// Opens one end: a publisher (reader == 0) or a subscriber of the service
/// `service` (a relative name, e.g. "c12"), whose files go under `root`
/// (an absolute directory path ending in '/') and whose shared memory
/// objects' names start with `prefix`. max_bytes: the message size;
/// nprod/nread: publishers and subscribers of the service; block != 0:
/// readers can sleep in pbr_iox2_wait. NULL on failure, with why in err
/// (and the negative errno in *rc).
///
/// # Safety
/// String arguments are NUL-terminated; err has errlen bytes.
#[no_mangle]
pub unsafe extern "C" fn pbr_iox2_open(
    root: *const c_char,
    prefix: *const c_char,
    service: *const c_char,
    reader: c_int,
    max_bytes: u32,
    nprod: u32,
    nread: u32,
    block: c_int,
    rc: *mut c_int,
    err: *mut c_char,
    errlen: usize,
) -> *mut c_void {
    set_log_level(LogLevel::Error);
    let (Some(root), Some(prefix), Some(service)) = (
        unsafe { str_arg(root) },
        unsafe { str_arg(prefix) },
        unsafe { str_arg(service) },
    ) else {
        set_err(err, errlen, "bad string argument");
        return ptr::null_mut();
    };
    let p = Params {
        root,
        prefix,
        service,
        reader: reader != 0,
        max_bytes: max_bytes as usize,
        nprod: nprod.max(1) as usize,
        nread: nread.max(1) as usize,
        block: block != 0,
    };
    match open(&p) {
        Ok(h) => Box::into_raw(Box::new(h)) as *mut c_void,
        Err((e, msg)) => {
            if !rc.is_null() {
                // SAFETY: the caller's int.
                unsafe { *rc = e };
            }
            set_err(err, errlen, &msg);
            ptr::null_mut()
        }
    }
}

/// Publisher: loans a slice of len bytes, copies buf into it and sends it
/// to every subscriber, waiting for those whose buffer is full. 0, or
/// -EAGAIN when every sample is on loan (try again), or -EIO.
///
/// # Safety
/// h from pbr_iox2_open (a publisher); buf has len bytes.
#[no_mangle]
pub unsafe extern "C" fn pbr_iox2_send(h: *mut c_void, buf: *const u8, len: usize) -> c_int {
    // SAFETY: a handle from pbr_iox2_open.
    let h = unsafe { &*(h as *const Handle) };
    let Port::Pub {
        publisher,
        notifier,
    } = &h.port
    else {
        return -EINVAL;
    };
    let mut s = match publisher.loan_slice_uninit(len) {
        Ok(s) => s,
        Err(_) => return -EAGAIN,
    };
    let dst = s.payload_mut();
    // SAFETY: dst is len bytes of the loaned sample; buf len bytes.
    unsafe { ptr::copy_nonoverlapping(buf, dst.as_mut_ptr() as *mut u8, len) };
    // SAFETY: every byte was written.
    let s = unsafe { s.assume_init() };
    if s.send().is_err() {
        return -EIO;
    }
    if let Some(n) = notifier {
        if n.notify().is_err() {
            return -EIO;
        }
    }
    0
}

/// Subscriber: takes the next sample, if any, copies its first 16 bytes
/// to out16 and releases it. With expect non-NULL, the sample must be
/// expect_len bytes long and equal expect after the first 16. 1: got
/// one; 0: none yet; -EBADMSG: the check failed; -EIO.
///
/// # Safety
/// h from pbr_iox2_open (a subscriber); out16 has 16 bytes; expect
/// (if not NULL) expect_len.
#[no_mangle]
pub unsafe extern "C" fn pbr_iox2_take(
    h: *mut c_void,
    out16: *mut u8,
    expect: *const u8,
    expect_len: usize,
) -> c_int {
    // SAFETY: a handle from pbr_iox2_open.
    let h = unsafe { &*(h as *const Handle) };
    let Port::Sub { subscriber, .. } = &h.port else {
        return -EINVAL;
    };
    let s = match subscriber.receive() {
        Ok(Some(s)) => s,
        Ok(None) => return 0,
        Err(_) => return -EIO,
    };
    let p = s.payload();
    if p.len() < HEADER {
        return -EBADMSG;
    }
    // SAFETY: out16 has 16 bytes.
    unsafe { ptr::copy_nonoverlapping(p.as_ptr(), out16, HEADER) };
    if !expect.is_null() {
        // SAFETY: expect has expect_len bytes.
        let want = unsafe { core::slice::from_raw_parts(expect, expect_len) };
        if p.len() != expect_len || p[HEADER..] != want[HEADER..] {
            return -EBADMSG;
        }
    }
    1
}

/// Subscriber in block mode: sleeps until a publisher notified since the
/// last wait. 0, or -EINVAL (spin mode), or -EIO.
///
/// # Safety
/// h from pbr_iox2_open (a subscriber).
#[no_mangle]
pub unsafe extern "C" fn pbr_iox2_wait(h: *mut c_void) -> c_int {
    // SAFETY: a handle from pbr_iox2_open.
    let h = unsafe { &*(h as *const Handle) };
    match &h.port {
        Port::Sub {
            listener: Some(l), ..
        } => match l.blocking_wait(|_| {}) {
            Ok(_) => 0,
            Err(_) => -EIO,
        },
        _ => -EINVAL,
    }
}

/// Closes one end: its ports, services and node, and their files.
///
/// # Safety
/// h from pbr_iox2_open, or NULL; not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn pbr_iox2_close(h: *mut c_void) {
    if !h.is_null() {
        // SAFETY: a handle from pbr_iox2_open, given back once.
        drop(unsafe { Box::from_raw(h as *mut Handle) });
    }
}
