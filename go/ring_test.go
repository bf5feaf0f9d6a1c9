// SPDX-License-Identifier: MIT

package pbring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestCreateAttach(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 16, SlotSize: 256, MaxProducers: 3,
		MaxReaders: 2, MsgType: "x.Y", Schema: []byte("fds"), SeqBase: 7})
	a, err := Attach(name, nil)
	must(t, err)
	defer a.Close()
	ai, ri := a.Info(), r.Info()
	if ai != ri || ai.Name != name || ai.MsgType != "x.Y" || ai.PayloadCap != 192 ||
		ai.SeqBase != 7 || ai.SchemaHash != SchemaHash([]byte("fds")) || ai.TotalSize != 4096*4+16*256 {
		t.Fatalf("info %+v vs %+v", ai, ri)
	}
	if s, _ := a.Schema(); string(s) != "fds" {
		t.Fatalf("schema %q", s)
	}
	if _, err := Create(name, nil); !errors.Is(err, ErrExist) || !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("second create: %v", err)
	}
	st, err := a.Stats()
	must(t, err)
	if st.Claimed != 7 {
		t.Fatalf("claim %d", st.Claimed)
	}
}

func TestCreateInvalid(t *testing.T) {
	bad := []CreateOptions{
		{SlotCount: 3}, {SlotCount: 1 << 25}, {SlotSize: 100}, {SlotSize: 64},
		{MaxReaders: 1025}, {MaxProducers: 2000}, {Mode: 0o1000},
		{MsgType: string(make([]byte, 192))},
	}
	for i, o := range bad {
		if _, err := Create("gotest-invalid", &o); !errors.Is(err, ErrInvalid) {
			t.Errorf("case %d: %v", i, err)
			Unlink("gotest-invalid")
		}
	}
	for _, n := range []string{"", ".x", "a/b", "a b", string(make([]byte, 64))} {
		if _, err := Create(n, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("name %q: %v", n, err)
		}
	}
	if _, err := Attach("gotest-does-not-exist", nil); !errors.Is(err, ErrNotExist) {
		t.Errorf("attach missing: %v", err)
	}
}

// corrupt creates a ring, closes it, lets f modify the object's bytes
// and returns what Attach says.
func corrupt(t *testing.T, f func(b []byte)) error {
	r, name := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128, Schema: []byte("fds")})
	r.Close()
	path := shmPath(name)
	b, err := os.ReadFile(path)
	must(t, err)
	f(b)
	must(t, os.WriteFile(path, b, 0o600))
	a, err := Attach(name, &AttachOptions{Timeout: 20 * time.Millisecond})
	if err == nil {
		a.Close()
	}
	return err
}

func TestAttachValidation(t *testing.T) {
	le := binary.LittleEndian
	cases := []struct {
		name string
		f    func(b []byte)
		want error
	}{
		{"magic", func(b []byte) { b[0] ^= 1 }, ErrBadMagic},
		{"major", func(b []byte) { le.PutUint16(b[sbMajor:], 2) }, ErrVersion},
		{"fingerprint", func(b []byte) { le.PutUint32(b[sbFingerprint:], 0x88101010) }, ErrFingerprint},
		{"incompat", func(b []byte) { le.PutUint64(b[sbFeaturesIncompat:], 4) }, ErrFeature},
		{"total size", func(b []byte) { le.PutUint64(b[sbTotalSize:], 1<<20) }, ErrCorrupt},
		{"slot count", func(b []byte) { le.PutUint32(b[sbSlotCount:], 3) }, ErrCorrupt},
		{"slot size", func(b []byte) { le.PutUint32(b[sbSlotSize:], 200) }, ErrCorrupt},
		{"readers", func(b []byte) { le.PutUint32(b[sbMaxReaders:], 0) }, ErrCorrupt},
		{"sp producers", func(b []byte) { le.PutUint32(b[sbRingFlags:], 1) }, ErrCorrupt},
		{"region order", func(b []byte) { le.PutUint64(b[sbControlOff:], 0) }, ErrCorrupt},
		{"region align", func(b []byte) { le.PutUint64(b[sbSlotsOff:], 4096*3+8) }, ErrCorrupt},
		{"slots size", func(b []byte) { le.PutUint64(b[sbSlotsSize:], 128) }, ErrCorrupt},
		{"schema len", func(b []byte) { le.PutUint32(b[sbSchemaLen:], 1) }, ErrCorrupt},
		{"schema hash of other bytes", func(b []byte) { b[sbSchemaHash] ^= 1 }, ErrCorrupt},
		{"name nul", func(b []byte) {
			for i := 0; i < sbNameSize; i++ {
				b[sbName+i] = 'a'
			}
		}, ErrCorrupt},
		{"msg type nul", func(b []byte) {
			for i := 0; i < sbMsgTypeSize; i++ {
				b[sbMsgType+i] = 'a'
			}
		}, ErrCorrupt},
		// Not ready and no creator holds the creation lock: damaged, at once.
		{"not ready", func(b []byte) { le.PutUint32(b[sbState:], 0) }, ErrCorrupt},
		{"foreign, not ready", func(b []byte) {
			le.PutUint32(b[sbState:], 0)
			le.PutUint64(b[sbMagic:], 0x1234)
		}, ErrBadMagic},
		{"newer minor", func(b []byte) { le.PutUint16(b[sbMinor:], 9) }, nil},
		{"compat feature", func(b []byte) { le.PutUint64(b[sbFeaturesCompat:], 1) }, nil},
	}
	for _, c := range cases {
		err := corrupt(t, c.f)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestAttachPermissions(t *testing.T) {
	_, name := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128, Mode: 0o644})
	a, err := Attach(name, nil)
	must(t, err)
	a.Close()
	must(t, os.Chmod(shmPath(name), 0o666))
	if _, err := Attach(name, nil); !errors.Is(err, ErrPermission) {
		t.Fatalf("world-writable: %v", err)
	}
	// A ring too small to hold a superblock, with no creator at work, is
	// damaged: said at once, not after the timeout.
	must(t, os.Truncate(shmPath(name), 100))
	must(t, os.Chmod(shmPath(name), 0o600))
	t0 := time.Now()
	if _, err := Attach(name, &AttachOptions{Timeout: 5 * time.Second}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short object: %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("damaged ring reported after %v", d)
	}
}

// While a creator holds the creation lock (§12.1), an unfinished ring is
// being created: attach waits for it, and times out if it never finishes.
func TestAttachWaitsForCreator(t *testing.T) {
	_, name := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	fd, err := syscall.Open(shmPath(name), syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	must(t, err)
	defer syscall.Close(fd)
	m, err := syscall.Mmap(fd, 0, pageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	must(t, err)
	defer syscall.Munmap(m)
	u32at(m, sbState).Store(stateInit)
	must(t, lockTake(fd, creationLock))
	if _, err := Attach(name, &AttachOptions{Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("being created: %v", err)
	}
	go func() {
		time.Sleep(30 * time.Millisecond)
		u32at(m, sbState).Store(stateReady)
		lockDrop(fd, creationLock)
	}()
	a, err := Attach(name, &AttachOptions{Timeout: 2 * time.Second})
	must(t, err)
	a.Close()
}

func TestCheckType(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, MsgType: "a.B", SchemaHash: 5})
	if err := r.CheckType("a.B", 0); err != nil {
		t.Fatal(err)
	}
	if err := r.CheckType("a.B", 5); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		t string
		h uint64
	}{{"a.C", 0}, {"a.B", 6}, {"", 0}} {
		if err := r.CheckType(c.t, c.h); !errors.Is(err, ErrWrongType) || !errors.Is(err, syscall.EMEDIUMTYPE) {
			t.Fatalf("%v: %v", c, err)
		}
	}
	u, _ := testRing(t, &CreateOptions{SlotCount: 4})
	if err := u.CheckType("", 0); !errors.Is(err, ErrWrongType) {
		t.Fatalf("untyped ring matched: %v", err)
	}
}

func TestHashes(t *testing.T) {
	if got := CRC32C([]byte("123456789")); got != 0xE3069283 {
		t.Fatalf("crc32c %#x", got)
	}
	vec := map[string]uint64{"": 0, "a": 0xaf63dc4c8601ec8c, "foobar": 0x85944171f73967e8}
	for s, want := range vec {
		if got := SchemaHash([]byte(s)); got != want {
			t.Errorf("fnv1a(%q) = %#x, want %#x", s, got, want)
		}
	}
}

func TestSentinelErrnos(t *testing.T) {
	pairs := map[*Error]syscall.Errno{
		ErrNotExist: syscall.ENOENT, ErrExist: syscall.EEXIST, ErrBadMagic: syscall.EPROTO,
		ErrVersion: syscall.EPROTONOSUPPORT, ErrFingerprint: syscall.EPROTOTYPE,
		ErrFeature: syscall.ENOTSUP, ErrCorrupt: syscall.EUCLEAN, ErrPermission: syscall.EPERM,
		ErrTimeout: syscall.ETIMEDOUT, ErrFull: syscall.EAGAIN, ErrEmpty: syscall.EAGAIN,
		ErrMsgSize: syscall.EMSGSIZE, ErrBadMsg: syscall.EBADMSG, ErrOwnerDead: syscall.EOWNERDEAD,
		ErrStale: syscall.ESTALE, ErrWrongType: syscall.EMEDIUMTYPE,
		ErrInterrupted: syscall.EINTR, ErrRemoved: syscall.EIDRM,
		ErrReadOnly: syscall.EROFS,
	}
	for e, n := range pairs {
		w := wrap("r", "op", e)
		if !errors.Is(w, e) || !errors.Is(w, n) || e.Errno() != n {
			t.Errorf("%v does not match %v", e, n)
		}
	}
	if !errors.Is(ErrNotExist, os.ErrNotExist) {
		t.Error("ErrNotExist is not fs.ErrNotExist")
	}
}

// Schema bytes and their hash agree (§3.2): computed when not given,
// refused when given and different.
func TestCreateSchemaHash(t *testing.T) {
	name := fmt.Sprintf("gotest-%d-sh", os.Getpid())
	_ = Unlink(name)
	if _, err := Create(name, &CreateOptions{SlotCount: 4, Schema: []byte("fds"), SchemaHash: 42}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("mismatched hash: %v", err)
	}
	r, err := Create(name, &CreateOptions{SlotCount: 4, Schema: []byte("fds")})
	must(t, err)
	defer Unlink(name)
	defer r.Close()
	if h := r.Info().SchemaHash; h != SchemaHash([]byte("fds")) {
		t.Fatalf("hash %#x", h)
	}
}

// Bad geometry and names say why, in the C command's words, and still
// match ErrInvalid (EINVAL).
func TestCreateSaysWhy(t *testing.T) {
	name := fmt.Sprintf("gotest-%d-why", os.Getpid())
	cases := []struct {
		name string
		o    CreateOptions
		want string
	}{
		{name, CreateOptions{SlotCount: 24}, "slots: 24 is not a power of two in 2..16777216"},
		{name, CreateOptions{SlotCount: 1 << 25}, "slots: 33554432 is not a power of two in 2..16777216"},
		{name, CreateOptions{SlotSize: 200}, "slot_size: 200 is not a multiple of 128 in 128..1073741824"},
		{name, CreateOptions{MaxReaders: 2000}, "max_readers: 2000 is not in 1..1024"},
		{name, CreateOptions{Mode: 0o666}, "mode: 0666 is not an octal mode without world-write"},
		{"a/b", CreateOptions{}, `invalid ring name "a/b" (use 1-63 of [A-Za-z0-9_.-])`},
	}
	for _, c := range cases {
		_, err := Create(c.name, &c.o)
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%+v: %v is not ErrInvalid", c.o, err)
			continue
		}
		if want := c.name + ": create: " + c.want; err.Error() != want {
			t.Errorf("got %q, want %q", err.Error(), want)
		}
	}
	if _, err := os.Stat(shmPath(name)); !os.IsNotExist(err) {
		t.Fatal("a refused create left an object behind")
	}
}
