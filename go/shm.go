// SPDX-License-Identifier: MIT

package pbring

import (
	"bytes"
	"encoding/binary"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const (
	defaultSlots         = 1024
	defaultSlotSize      = 1024
	defaultParticipants  = 8
	defaultAttachTimeout = time.Second
)

// Ring is one mapping of a ring. Its methods are safe for concurrent use;
// the producers and readers it opens are each used by one goroutine at a
// time.
type Ring struct {
	name string
	mem  []byte // the whole segment
	fd   int    // this mapping's file description: probes liveness locks
	g    geometry
	info Info

	interrupted atomic.Bool // set by Interrupt
	readOnly    bool        // mapped PROT_READ: only taps, nothing written

	reapFd int // a second description, for reaping (see liveness.go); -1 read-only
	reapMu sync.Mutex

	mu        sync.Mutex // guards the fields below
	closed    bool
	producers map[*Producer]struct{}
	readers   map[*Reader]struct{}
}

// geometry is the validated copy of the superblock's numbers; the shared
// superblock is never read again after attach.
type geometry struct {
	ctl, ptab, rtab, slots, schema uint64 // region offsets
	mtab                           uint64 // reader metrics blocks; 0: none (before 1.2)
	seqBase, mask                  uint64
	slotCount, slotSize, payCap    uint32
	maxProducers, maxReaders       uint32
	ringFlags                      uint32
	crcBelow                       uint64 // CRC policy: payloads shorter than this get one
	// durable: features_incompat DURABLE_READERS (1.3): a reader entry
	// flagged DURABLE is never reaped (§8.4); elsewhere the flag is ignored.
	durable bool
}

// Info describes a ring, from the superblock as validated at attach.
type Info struct {
	Name           string // ring name
	MsgType        string // protobuf message full name; "" = untyped
	FormatMajor    uint16 // format version of the segment
	FormatMinor    uint16 // (may be newer than FormatMinor)
	SingleProducer bool   // one producer, claims without read-modify-write
	SlotCount      uint32 // slots, a power of two
	SlotSize       uint32 // bytes per slot, header included
	PayloadCap     uint32 // SlotSize - SlotHeaderSize
	MaxProducers   uint32 // producer entries
	MaxReaders     uint32 // reader entries
	TotalSize      uint64 // bytes of the segment
	SeqBase        uint64 // the first sequence number
	SchemaHash     uint64 // schema identity; 0 = none
	SchemaLen      uint32 // bytes of the stored FileDescriptorSet
	CreatorUID     uint32 // diagnostic
	CreatorPID     uint32 // diagnostic
	CreatedNs      uint64 // CLOCK_REALTIME at creation
	// CRC and CRCLimit are the ring's CRC policy (format 1.1): CRCLimit
	// is the largest payload that gets a CRC with CRCUpTo, else 0. A
	// policy this package does not know (from a newer minor) reads as
	// CRCFull, limit 0; a 1.0 ring reads as CRCFull.
	CRC      CRCPolicy
	CRCLimit uint32
	// DurableReaders: the ring allows durable (named) readers (format
	// 1.3, feature DURABLE_READERS; ReaderOptions.Durable).
	DurableReaders bool
}

// CreateOptions shape a new ring. The zero value (or nil) means 1024 slots
// of 1024 bytes, 8 producers, 8 readers, mode 0600, multi-producer,
// sequences from 0, no schema, a CRC on every payload.
type CreateOptions struct {
	SlotCount      uint32 // power of two, 2 .. 2^24
	SlotSize       uint32 // bytes incl. the 64-byte header; multiple of 128
	MaxProducers   uint32 // 1 .. 1024 (forced to 1 with SingleProducer)
	MaxReaders     uint32 // 1 .. 1024
	Mode           uint32 // permission bits; 0 means 0600
	SingleProducer bool   // one producer, no read-modify-write per message
	SeqBase        uint64 // first sequence number
	MsgType        string // protobuf message full name, or ""
	Schema         []byte // serialized FileDescriptorSet, or nil
	SchemaHash     uint64 // schema identity (see SchemaHash), 0 = none
	// CRC is which payloads producers checksum (CRCFull, the zero value,
	// CRCNone or CRCUpTo); CRCLimit, with CRCUpTo only, the largest
	// payload in bytes that gets a CRC (0: only empty ones). Another
	// policy, or a limit with a policy other than CRCUpTo, is ErrInvalid.
	CRC      CRCPolicy
	CRCLimit uint32
	// DurableReaders allows durable (named) readers (format 1.3, as C's
	// PBR_CREATE_DURABLE_READERS): a dead one is never reaped, it waits,
	// gating, to be taken over by name or dropped (ReaderOptions.Durable).
	// Implementations of format 1.2 and earlier refuse such a ring.
	DurableReaders bool
}

// AttachOptions tune Attach. The zero value (or nil) waits up to 1 s for a
// ring still being created and refuses rings of another owner.
type AttachOptions struct {
	Timeout  time.Duration // wait for READY; 0 means 1 s
	AnyOwner bool          // accept a ring owned by another uid
	// ReadOnly opens the object read-only and maps it PROT_READ, so read
	// permission is enough (a ring another user created group- or
	// world-readable, FORMAT.md §9.5). Nothing is written to the segment,
	// attach included. Only tap readers (ReaderOptions.Tap) work on such
	// a ring: NewProducer, other readers and Reclaim fail with
	// ErrReadOnly. A ring of another owner still needs AnyOwner; a tap
	// writes nothing, so accepting one is safe. A View's Data is then a
	// window into a read-only mapping: writing to it kills the process
	// with a fault, as writing to C's const view data would.
	ReadOnly bool
}

// CheckName validates a ring name: 1 to 63 bytes of [A-Za-z0-9_.-], not
// starting with '.'. It returns ErrInvalid otherwise.
func CheckName(name string) error {
	bad := name == "" || name[0] == '.' || len(name) > NameMax
	for i := 0; i < len(name) && !bad; i++ {
		c := name[i]
		bad = !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.')
	}
	if bad {
		return invalid("invalid ring name %q (use 1-%d of [A-Za-z0-9_.-])", name, NameMax)
	}
	return nil
}

func shmPath(name string) string { return ShmDir + "/" + NamePrefix + name }

func pageUp(v uint64) uint64 { return (v + pageSize - 1) &^ (pageSize - 1) }

func isPow2(v uint64) bool { return v != 0 && v&(v-1) == 0 }

func orDefault(v, d uint32) uint64 {
	if v == 0 {
		return uint64(d)
	}
	return uint64(v)
}

// superblock is the decoded form of the superblock's fields.
type superblock struct {
	magic                             uint64
	major, minor                      uint16
	fingerprint, ringFlags            uint32
	featIncompat, featCompat          uint64
	totalSize                         uint64
	slotCount, slotSize               uint32
	maxProducers, maxReaders          uint32
	ctlOff, ctlSize, partOff, partSz  uint64
	schemaOff, schemaSize             uint64
	slotsOff, slotsSize               uint64
	seqBase, schemaHash               uint64
	schemaLen, creatorUID, creatorPID uint32
	createdNs                         uint64
	crcPolicy, crcLimit               uint32 // 1.1
	name                              [sbNameSize]byte
	msgType                           [sbMsgTypeSize]byte
}

// planLayout fills the geometry of a new ring exactly as the C library
// does, so that rings made by either are byte-identical.
func planLayout(o *CreateOptions, sb *superblock) error {
	// Stored schema bytes and their hash agree (§3.2): the hash is
	// computed at creation, and a different one given for them refused.
	if len(o.Schema) > 0 && o.SchemaHash != 0 && o.SchemaHash != SchemaHash(o.Schema) {
		return invalid("schema_hash %#x is not the hash of the schema bytes", o.SchemaHash)
	}
	n := orDefault(o.SlotCount, defaultSlots)
	sz := orDefault(o.SlotSize, defaultSlotSize)
	np := orDefault(o.MaxProducers, defaultParticipants)
	nr := orDefault(o.MaxReaders, defaultParticipants)
	if o.SingleProducer {
		np = 1
	}
	if err := checkGeometryArgs(n, sz, np, nr); err != nil {
		return err
	}
	if o.Mode&^0o777 != 0 || o.Mode&0o002 != 0 {
		return invalid("mode: %#o is not an octal mode without world-write", o.Mode)
	}
	if len(o.MsgType) > MsgTypeMax || bytes.IndexByte([]byte(o.MsgType), 0) >= 0 {
		return invalid("msg_type: not 1..%d bytes without NUL", MsgTypeMax)
	}
	if uint64(len(o.Schema)) > 1<<32-1 {
		return invalid("schema: %d bytes is more than 4 GiB", len(o.Schema))
	}
	if err := checkCRCArgs(o.CRC, o.CRCLimit); err != nil {
		return err
	}
	// #nosec G115 -- n, sz, np, nr came as uint32 and checkGeometryArgs bounds them
	sb.slotCount, sb.slotSize = uint32(n), uint32(sz)
	sb.maxProducers, sb.maxReaders = uint32(np), uint32(nr) // #nosec G115 -- as above
	sb.ctlOff, sb.ctlSize = pageSize, ctlSize
	sb.partOff = sb.ctlOff + sb.ctlSize
	sb.partSz = pageUp((np+nr)*entrySize + nr*metricsSize)
	sb.schemaOff = sb.partOff + sb.partSz
	sb.schemaSize = pageUp(uint64(len(o.Schema)))
	sb.slotsOff = sb.schemaOff + sb.schemaSize
	sb.slotsSize = n * sz
	sb.totalSize = sb.slotsOff + sb.slotsSize
	return nil
}

// checkGeometryArgs refuses what create cannot make, saying why in the C
// command's words.
func checkGeometryArgs(n, sz, np, nr uint64) error {
	switch {
	case !isPow2(n) || n < SlotCountMin || n > SlotCountMax:
		return invalid("slots: %d is not a power of two in %d..%d", n, SlotCountMin, SlotCountMax)
	case sz%blockSize != 0 || sz < SlotSizeMin || sz > SlotSizeMax:
		return invalid("slot_size: %d is not a multiple of %d in %d..%d", sz, blockSize, SlotSizeMin, SlotSizeMax)
	case np > ParticipantsMax:
		return invalid("max_producers: %d is not in 1..%d", np, ParticipantsMax)
	case nr > ParticipantsMax:
		return invalid("max_readers: %d is not in 1..%d", nr, ParticipantsMax)
	}
	return nil
}

// checkCRCArgs refuses a CRC policy this format does not define, and a
// limit with a policy other than CRCUpTo (as C's pbr_ring_create).
func checkCRCArgs(crc CRCPolicy, limit uint32) error {
	switch {
	case crc > CRCUpTo:
		return invalid("crc: %d is not a CRC policy (%d full, %d none, %d upto)", uint32(crc), CRCFull, CRCNone, CRCUpTo)
	case crc != CRCUpTo && limit != 0:
		return invalid("crc_limit: %d is given with crc %s; a limit needs crc upto", limit, crc)
	}
	return nil
}

func fillIdentity(name string, o *CreateOptions, sb *superblock) {
	sb.magic = Magic
	sb.major, sb.minor = FormatMajor, FormatMinor
	sb.fingerprint = LayoutFingerprint
	sb.featCompat = featureReaderMetrics // the table has the blocks (§5.5)
	if o.DurableReaders {
		sb.featIncompat = featureDurableReaders
	}
	if o.SingleProducer {
		sb.ringFlags = ringSingleProducer
	}
	sb.seqBase = o.SeqBase
	sb.crcPolicy, sb.crcLimit = uint32(o.CRC), o.CRCLimit
	sb.schemaHash = o.SchemaHash
	if len(o.Schema) > 0 {
		sb.schemaHash = SchemaHash(o.Schema)
	}
	sb.schemaLen = uint32(len(o.Schema)) // #nosec G115 -- at most 2^32-1: planLayout checked
	sb.creatorUID = selfUID()
	sb.creatorPID = selfPID()
	sb.createdNs = uint64(time.Now().UnixNano())
	copy(sb.name[:sbNameSize-1], name)
	copy(sb.msgType[:sbMsgTypeSize-1], o.MsgType)
}

// encode writes every superblock field except state into b.
func (sb *superblock) encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[sbMagic:], sb.magic)
	le.PutUint16(b[sbMajor:], sb.major)
	le.PutUint16(b[sbMinor:], sb.minor)
	le.PutUint32(b[sbFingerprint:], sb.fingerprint)
	le.PutUint32(b[sbRingFlags:], sb.ringFlags)
	le.PutUint64(b[sbFeaturesIncompat:], sb.featIncompat)
	le.PutUint64(b[sbFeaturesCompat:], sb.featCompat)
	le.PutUint64(b[sbTotalSize:], sb.totalSize)
	le.PutUint32(b[sbSlotCount:], sb.slotCount)
	le.PutUint32(b[sbSlotSize:], sb.slotSize)
	le.PutUint32(b[sbMaxProducers:], sb.maxProducers)
	le.PutUint32(b[sbMaxReaders:], sb.maxReaders)
	le.PutUint64(b[sbControlOff:], sb.ctlOff)
	le.PutUint64(b[sbControlSize:], sb.ctlSize)
	le.PutUint64(b[sbParticipantsOff:], sb.partOff)
	le.PutUint64(b[sbParticipantsSize:], sb.partSz)
	le.PutUint64(b[sbSchemaOff:], sb.schemaOff)
	le.PutUint64(b[sbSchemaSize:], sb.schemaSize)
	le.PutUint64(b[sbSlotsOff:], sb.slotsOff)
	le.PutUint64(b[sbSlotsSize:], sb.slotsSize)
	le.PutUint64(b[sbSeqBase:], sb.seqBase)
	le.PutUint64(b[sbSchemaHash:], sb.schemaHash)
	le.PutUint32(b[sbSchemaLen:], sb.schemaLen)
	le.PutUint32(b[sbCreatorUID:], sb.creatorUID)
	le.PutUint32(b[sbCreatorPID:], sb.creatorPID)
	le.PutUint32(b[sbCRCPolicy:], sb.crcPolicy)
	le.PutUint64(b[sbCreatedNs:], sb.createdNs)
	le.PutUint32(b[sbCRCLimit:], sb.crcLimit)
	copy(b[sbName:sbName+sbNameSize], sb.name[:])
	copy(b[sbMsgType:sbMsgType+sbMsgTypeSize], sb.msgType[:])
}

// decode reads a private copy of the superblock (never the mapping).
func (sb *superblock) decode(b *[sbSize]byte) {
	le := binary.LittleEndian
	sb.magic = le.Uint64(b[sbMagic:])
	sb.major = le.Uint16(b[sbMajor:])
	sb.minor = le.Uint16(b[sbMinor:])
	sb.fingerprint = le.Uint32(b[sbFingerprint:])
	sb.ringFlags = le.Uint32(b[sbRingFlags:])
	sb.featIncompat = le.Uint64(b[sbFeaturesIncompat:])
	sb.featCompat = le.Uint64(b[sbFeaturesCompat:])
	sb.totalSize = le.Uint64(b[sbTotalSize:])
	sb.slotCount = le.Uint32(b[sbSlotCount:])
	sb.slotSize = le.Uint32(b[sbSlotSize:])
	sb.maxProducers = le.Uint32(b[sbMaxProducers:])
	sb.maxReaders = le.Uint32(b[sbMaxReaders:])
	sb.ctlOff = le.Uint64(b[sbControlOff:])
	sb.ctlSize = le.Uint64(b[sbControlSize:])
	sb.partOff = le.Uint64(b[sbParticipantsOff:])
	sb.partSz = le.Uint64(b[sbParticipantsSize:])
	sb.schemaOff = le.Uint64(b[sbSchemaOff:])
	sb.schemaSize = le.Uint64(b[sbSchemaSize:])
	sb.slotsOff = le.Uint64(b[sbSlotsOff:])
	sb.slotsSize = le.Uint64(b[sbSlotsSize:])
	sb.seqBase = le.Uint64(b[sbSeqBase:])
	sb.schemaHash = le.Uint64(b[sbSchemaHash:])
	sb.schemaLen = le.Uint32(b[sbSchemaLen:])
	sb.creatorUID = le.Uint32(b[sbCreatorUID:])
	sb.creatorPID = le.Uint32(b[sbCreatorPID:])
	sb.crcPolicy = le.Uint32(b[sbCRCPolicy:])
	sb.createdNs = le.Uint64(b[sbCreatedNs:])
	sb.crcLimit = le.Uint32(b[sbCRCLimit:])
	copy(sb.name[:], b[sbName:])
	copy(sb.msgType[:], b[sbMsgType:])
}

// Create makes ring name exclusively and maps it. ErrExist if the name is
// taken (a stale ring is removed with Unlink and created afresh, never
// reused), ErrInvalid for a bad name or geometry; a full shared-memory
// file system fails here (ENOSPC) and leaves nothing behind. The ring is
// visible to Attach only once fully initialised.
func Create(name string, o *CreateOptions) (*Ring, error) {
	r, err := create(name, o)
	return r, wrap(name, "create", err)
}

func create(name string, o *CreateOptions) (*Ring, error) {
	if o == nil {
		o = &CreateOptions{}
	}
	var sb superblock
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := planLayout(o, &sb); err != nil {
		return nil, err
	}
	fillIdentity(name, o, &sb)
	path := shmPath(name)
	// 0600 while it is being initialised; the asked mode once ready.
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL|
		syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fromErrno(err)
	}
	r, err := initAndMap(fd, &sb, o)
	if err != nil { // cleaning up after err, which is the one to report
		_ = syscall.Close(fd)
		_ = syscall.Unlink(path)
		return nil, err
	}
	return r, nil
}

func initAndMap(fd int, sb *superblock, o *CreateOptions) (*Ring, error) {
	// The creation lock (§12.1): held until READY, so that an attacher
	// can tell a ring being created from a damaged one.
	if err := lockTake(fd, creationLock); err != nil {
		return nil, err
	}
	size := int64(sb.totalSize) // #nosec G115 -- planLayout: 2^24 slots of 2^30 bytes at most, and tables: < 2^55
	if err := fallocate(fd, size); err != nil {
		return nil, err
	}
	mem, err := syscall.Mmap(fd, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	initSegment(mem, sb, o)
	_ = syscall.Munmap(mem) // a mapping of ours: cannot fail usefully
	lockDrop(fd, creationLock)
	mode := o.Mode
	if mode == 0 {
		mode = 0o600
	}
	if err := syscall.Fchmod(fd, mode); err != nil {
		return nil, err
	}
	return ringFromFd(fd, size, false)
}

// fallocate sizes the object so that a full tmpfs fails here, not with
// SIGBUS on some later page.
func fallocate(fd int, size int64) error {
	for {
		err := syscall.Fallocate(fd, 0, 0, size)
		if err != syscall.EINTR {
			return err
		}
	}
}

// initSegment writes the new segment; state is published last (R0).
func initSegment(mem []byte, sb *superblock, o *CreateOptions) {
	var page [sbSize]byte
	sb.encode(page[:])
	copy(mem[:sbState], page[:sbState])
	copy(mem[sbMajor:sbSize], page[sbMajor:])
	copy(mem[sb.schemaOff:], o.Schema)
	u64at(mem, sb.ctlOff+ctlClaim).Store(sb.seqBase)
	// R0: everything above is visible before state reads READY; pairs
	// with A0 in waitReady. Entries, bells and slots are zero already.
	u32at(mem, sbState).Store(stateReady)
}

// Attach maps an existing ring after validating it (FORMAT.md §12.2).
// Errors: ErrNotExist; ErrPermission (another owner, or writable by
// others); ErrNotRegular; ErrTimeout (never became READY); ErrBadMagic,
// ErrVersion, ErrFingerprint, ErrFeature, ErrCorrupt for a ring that is
// not one this package can use.
func Attach(name string, o *AttachOptions) (*Ring, error) {
	r, err := attach(name, o)
	return r, wrap(name, "attach", err)
}

func attach(name string, o *AttachOptions) (*Ring, error) {
	if o == nil {
		o = &AttachOptions{}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = defaultAttachTimeout
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	mode := syscall.O_RDWR
	if o.ReadOnly {
		mode = syscall.O_RDONLY
	}
	fd, err := syscall.Open(shmPath(name), mode|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fromErrno(err)
	}
	// Neither waitReady nor ringFromFd writes: they read through a
	// PROT_READ page and test the creation lock with F_OFD_GETLK, which
	// takes nothing and needs no write permission.
	size, err := waitReady(fd, o.AnyOwner, timeout)
	var r *Ring
	if err == nil {
		r, err = ringFromFd(fd, size, o.ReadOnly)
	}
	if err != nil {
		_ = syscall.Close(fd) // cleaning up after err, the one to report
		return nil, err
	}
	return r, nil
}

// checkStat: a regular file, not writable by others, ours unless anyOwner.
func checkStat(fd int, anyOwner bool) (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return 0, fromErrno(err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return 0, ErrNotRegular
	}
	if st.Mode&0o002 != 0 || (st.Uid != selfUID() && !anyOwner) {
		return 0, ErrPermission
	}
	return st.Size, nil
}

// creationGrace: an empty object whose creation lock is free is damaged
// after this long; a creator takes the lock just after the object
// appears (§12.2).
const creationGrace = 20 * time.Millisecond

// waitReady waits while the creator sizes the object and publishes READY
// (A0). Without a live creator a ring that is not ready is damaged
// (ErrCorrupt), said at once; only an empty object gets a short grace.
func waitReady(fd int, anyOwner bool, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	var orphan time.Time
	for {
		size, err := look(fd, anyOwner)
		if err != errAgain {
			return size, err
		}
		if creatorAlive(fd) {
			orphan = time.Time{}
		} else {
			// READY is published before the unlock: look again.
			if size, err = look(fd, anyOwner); err != errAgain {
				return size, err
			}
			if orphan.IsZero() {
				orphan = time.Now()
			}
			if size != 0 || time.Since(orphan) >= creationGrace {
				return 0, ErrCorrupt
			}
		}
		if !time.Now().Before(deadline) {
			return 0, ErrTimeout
		}
		time.Sleep(time.Millisecond)
	}
}

// look: the object's size, and errAgain while it is not READY.
func look(fd int, anyOwner bool) (int64, error) {
	size, err := checkStat(fd, anyOwner)
	if err != nil {
		return 0, err
	}
	if size < pageSize {
		return size, errAgain
	}
	return size, pageState(fd)
}

// pageState: nil once READY, errAgain before, ErrBadMagic for a foreign
// file (a creator writes the magic before READY).
func pageState(fd int) (err error) {
	m, err := syscall.Mmap(fd, 0, pageSize, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return err
	}
	defer syscall.Munmap(m)
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, "", "attach")
	// A0: pairs with R0 in initSegment.
	if u32at(m, sbState).Load() == stateReady {
		return nil
	}
	if magic := u64at(m, sbMagic).Load(); magic != 0 && magic != Magic {
		return ErrBadMagic
	}
	return errAgain
}

// checkSchema: stored schema bytes hash to the stored schema_hash (§3.2).
// Geometry is checked already, so the schema region is in bounds.
func checkSchema(mem []byte, sb *superblock) (err error) {
	if sb.schemaLen == 0 || sb.schemaHash == 0 {
		return nil
	}
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, "", "attach")
	if SchemaHash(mem[sb.schemaOff:sb.schemaOff+uint64(sb.schemaLen)]) != sb.schemaHash {
		return ErrCorrupt
	}
	return nil
}

// ringFromFd maps fd (size bytes), validates a private copy of the
// superblock and builds the handle from that copy only. readOnly maps it
// PROT_READ, so that a stray write faults instead of reaching the ring.
func ringFromFd(fd int, size int64, readOnly bool) (*Ring, error) {
	if size < sbSize || uint64(size) > uint64(^uint(0)>>1) {
		return nil, ErrCorrupt
	}
	prot := syscall.PROT_READ | syscall.PROT_WRITE
	if readOnly {
		prot = syscall.PROT_READ
	}
	mem, err := syscall.Mmap(fd, 0, int(size), prot, syscall.MAP_SHARED)
	if err != nil {
		return nil, fromErrno(err)
	}
	var sb superblock
	err = readSuperblock(mem, &sb)
	if err == nil {
		err = checkIdentity(&sb)
	}
	if err == nil {
		err = checkGeometry(&sb, uint64(size))
	}
	if err == nil {
		err = checkSchema(mem, &sb)
	}
	reapFd := -1 // a read-only ring reaps nothing
	if err == nil && !readOnly {
		reapFd, err = reopen(fd)
	}
	if err != nil {
		_ = syscall.Munmap(mem) // cleaning up after err, the one to report
		return nil, err
	}
	r := &Ring{mem: mem, fd: fd, reapFd: reapFd, readOnly: readOnly,
		producers: map[*Producer]struct{}{}, readers: map[*Reader]struct{}{}}
	r.adopt(&sb)
	return r, nil
}

// readSuperblock copies the superblock once, guarding against a mapping
// truncated between fstat and now.
func readSuperblock(mem []byte, sb *superblock) (err error) {
	var page [sbSize]byte
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, "", "attach")
	copy(page[:], mem[:sbSize])
	sb.decode(&page)
	return nil
}

// checkIdentity: the identity checks, in the order of FORMAT.md §12.2.
func checkIdentity(sb *superblock) error {
	switch {
	case sb.magic != Magic:
		return ErrBadMagic
	case sb.major != FormatMajor:
		return ErrVersion
	case sb.fingerprint != LayoutFingerprint:
		return ErrFingerprint
	case sb.featIncompat&^featuresIncompatKnown != 0:
		return ErrFeature
	}
	return nil
}

// regionOK: [off, off+n) is page-aligned and starts at or after *end.
func regionOK(off, n uint64, end *uint64) bool {
	if off%pageSize != 0 || off < *end || n > ^uint64(0)-off {
		return false
	}
	*end = off + n
	return true
}

// checkGeometry validates every number the protocol relies on against the
// real size; any failure is ErrCorrupt.
func checkGeometry(sb *superblock, size uint64) error {
	if !sizesOK(sb, size) || !regionsOK(sb) ||
		bytes.IndexByte(sb.name[:], 0) < 0 || bytes.IndexByte(sb.msgType[:], 0) < 0 {
		return ErrCorrupt
	}
	return nil
}

func sizesOK(sb *superblock, size uint64) bool {
	n, sz := uint64(sb.slotCount), uint64(sb.slotSize)
	return sb.totalSize == size && isPow2(n) &&
		n >= SlotCountMin && n <= SlotCountMax &&
		sz%blockSize == 0 && sz >= SlotSizeMin && sz <= SlotSizeMax &&
		sb.maxProducers >= 1 && sb.maxProducers <= ParticipantsMax &&
		sb.maxReaders >= 1 && sb.maxReaders <= ParticipantsMax &&
		(sb.ringFlags&ringSingleProducer == 0 || sb.maxProducers == 1)
}

func regionsOK(sb *superblock) bool {
	end := uint64(pageSize)
	ptab := (uint64(sb.maxProducers) + uint64(sb.maxReaders)) * entrySize
	if sb.featCompat&featureReaderMetrics != 0 {
		ptab += uint64(sb.maxReaders) * metricsSize // a smaller table is damaged
	}
	return regionOK(sb.ctlOff, sb.ctlSize, &end) && sb.ctlSize >= ctlSize &&
		regionOK(sb.partOff, sb.partSz, &end) && sb.partSz >= ptab &&
		regionOK(sb.schemaOff, sb.schemaSize, &end) &&
		uint64(sb.schemaLen) <= sb.schemaSize &&
		regionOK(sb.slotsOff, sb.slotsSize, &end) &&
		sb.slotsSize == uint64(sb.slotCount)*uint64(sb.slotSize) &&
		end <= sb.totalSize
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// crcPolicy reads the superblock's CRC policy as C's fill_info does: a
// policy from a newer minor that this package does not know is CRCFull
// (a CRC too many costs time, not messages), and the limit is 0 unless
// the policy is CRCUpTo.
func crcPolicy(sb *superblock) (CRCPolicy, uint32) {
	switch crc := CRCPolicy(sb.crcPolicy); crc {
	case CRCNone:
		return crc, 0
	case CRCUpTo:
		return crc, sb.crcLimit
	}
	return CRCFull, 0
}

// crcBelow is the CRC policy as one comparison: payloads shorter than
// this get a CRC.
func crcBelow(crc CRCPolicy, limit uint32) uint64 {
	switch crc {
	case CRCNone:
		return 0
	case CRCUpTo:
		return uint64(limit) + 1
	}
	return ^uint64(0)
}

func (r *Ring) adopt(sb *superblock) {
	crc, crcLimit := crcPolicy(sb)
	r.g = geometry{
		ctl: sb.ctlOff, ptab: sb.partOff,
		rtab:  sb.partOff + uint64(sb.maxProducers)*entrySize,
		slots: sb.slotsOff, schema: sb.schemaOff,
		seqBase: sb.seqBase, mask: uint64(sb.slotCount) - 1,
		slotCount: sb.slotCount, slotSize: sb.slotSize,
		payCap:       sb.slotSize - SlotHeaderSize,
		maxProducers: sb.maxProducers, maxReaders: sb.maxReaders,
		ringFlags: sb.ringFlags,
		crcBelow:  crcBelow(crc, crcLimit),
		durable:   sb.featIncompat&featureDurableReaders != 0,
	}
	if sb.featCompat&featureReaderMetrics != 0 {
		r.g.mtab = r.g.rtab + uint64(sb.maxReaders)*entrySize
	}
	r.name = cstring(sb.name[:])
	r.info = Info{
		Name: r.name, MsgType: cstring(sb.msgType[:]),
		FormatMajor: sb.major, FormatMinor: sb.minor,
		SingleProducer: sb.ringFlags&ringSingleProducer != 0,
		SlotCount:      sb.slotCount, SlotSize: sb.slotSize,
		PayloadCap:   r.g.payCap,
		MaxProducers: sb.maxProducers, MaxReaders: sb.maxReaders,
		TotalSize: sb.totalSize, SeqBase: sb.seqBase,
		SchemaHash: sb.schemaHash, SchemaLen: sb.schemaLen,
		CreatorUID: sb.creatorUID, CreatorPID: sb.creatorPID,
		CreatedNs: sb.createdNs,
		CRC:       crc, CRCLimit: crcLimit,
		DurableReaders: sb.featIncompat&featureDurableReaders != 0,
	}
}

// ReadOnly reports whether the ring was attached read-only
// (AttachOptions.ReadOnly): only tap readers work on it.
func (r *Ring) ReadOnly() bool { return r.readOnly }

// Name is the ring's name as recorded in its superblock.
func (r *Ring) Name() string { return r.name }

// Info returns the ring's description (validated at attach).
func (r *Ring) Info() Info { return r.info }

// Schema returns a copy of the serialized FileDescriptorSet stored in the
// ring (nil if none).
func (r *Ring) Schema() (b []byte, err error) {
	if r.info.SchemaLen == 0 {
		return nil, nil
	}
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, r.name, "schema")
	off := r.g.schema
	return append([]byte(nil), r.mem[off:off+uint64(r.info.SchemaLen)]...), nil
}

// RingStats are the ring-wide counters of the control block.
type RingStats struct {
	Claimed         uint64 // the next sequence to be claimed
	Abandoned       uint64 // slots turned into abandoned records
	ProducersReaped uint64 // dead producer entries freed
	ReadersReaped   uint64 // dead reader entries freed
}

// Stats reads the ring's counters.
func (r *Ring) Stats() (st RingStats, err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, r.name, "stats")
	s := r.g.ctl + ctlStats
	st.Claimed = r.u64(r.g.ctl + ctlClaim).Load()
	st.Abandoned = r.u64(s + statAbandoned).Load()
	st.ProducersReaped = r.u64(s + statProducersReaped).Load()
	st.ReadersReaped = r.u64(s + statReadersReaped).Load()
	return st, nil
}

// Close closes every producer (aborting open reservations) and reader
// still open on the ring, then unmaps it. The ring itself stays; see
// Unlink.
func (r *Ring) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	ps, rs := r.handles()
	r.mu.Unlock()
	var first error
	for _, p := range ps {
		if err := p.Close(); err != nil && first == nil {
			first = err
		}
	}
	for _, rd := range rs {
		_ = rd.Close() // the ring's own close errors are the ones reported
	}
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	// Unmapping and closing what we mapped and opened cannot fail in a
	// way the caller could act on; first is what went wrong before.
	_ = syscall.Munmap(r.mem)
	_ = syscall.Close(r.fd)
	if r.reapFd >= 0 {
		_ = syscall.Close(r.reapFd)
	}
	return first
}

func (r *Ring) handles() ([]*Producer, []*Reader) {
	ps := make([]*Producer, 0, len(r.producers))
	for p := range r.producers {
		ps = append(ps, p)
	}
	rs := make([]*Reader, 0, len(r.readers))
	for rd := range r.readers {
		rs = append(rs, rd)
	}
	return ps, rs
}

// Unlink removes ring name. Processes that have it mapped keep using it.
func Unlink(name string) error {
	if err := CheckName(name); err != nil {
		return wrap(name, "unlink", err)
	}
	return wrap(name, "unlink", fromErrno(syscall.Unlink(shmPath(name))))
}

// --- shared words --------------------------------------------------------

// u64at and u32at view an aligned word of the mapping as an atomic. The
// offsets are validated geometry, naturally aligned (FORMAT.md §1), and
// the mapping is page-aligned, so the words are aligned in memory too.
func u64at(mem []byte, off uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&mem[off])) // #nosec G103 -- aligned word of the mapping (above)
}

func u32at(mem []byte, off uint64) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off])) // #nosec G103 -- as u64at
}

func (r *Ring) u64(off uint64) *atomic.Uint64 { return u64at(r.mem, off) }
func (r *Ring) u32(off uint64) *atomic.Uint32 { return u32at(r.mem, off) }

func (r *Ring) slotOff(seq uint64) uint64 {
	return r.g.slots + (seq&r.g.mask)*uint64(r.g.slotSize)
}

func (r *Ring) producerEntry(i uint32) uint64 { return r.g.ptab + uint64(i)*entrySize }
func (r *Ring) readerEntry(i uint32) uint64   { return r.g.rtab + uint64(i)*entrySize }

// readerMetrics is reader i's metrics block (§5.5), or 0 on a ring
// without (before format 1.2).
func (r *Ring) readerMetrics(i uint32) uint64 {
	if r.g.mtab == 0 {
		return 0
	}
	return r.g.mtab + uint64(i)*metricsSize
}

// prevFinished: slot(s) holds what it holds once every earlier sequence
// that used it is finished (§7.3).
func (r *Ring) prevFinished(s, v uint64) bool {
	if s-r.g.seqBase < uint64(r.g.slotCount) {
		return v == commitEmpty
	}
	p := s - uint64(r.g.slotCount)
	return v == commitDoneOf(p) || v == commitAbandOf(p)
}

// register and unregister track open handles for Close.
func (r *Ring) register(p *Producer, rd *Reader) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if p != nil {
		r.producers[p] = struct{}{}
	}
	if rd != nil {
		r.readers[rd] = struct{}{}
	}
	return nil
}

func (r *Ring) unregister(p *Producer, rd *Reader) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.producers, p)
	delete(r.readers, rd)
}

// selfPID is this process's id as the format's u32 pid fields hold it.
func selfPID() uint32 { return uint32(os.Getpid()) } // #nosec G115 -- a pid_t is positive, at most 2^22 on Linux

// selfUID is this process's effective user id (a 32-bit uid_t).
func selfUID() uint32 { return uint32(os.Geteuid()) } // #nosec G115 -- Linux's uid_t is 32 bits: Geteuid returns it widened
