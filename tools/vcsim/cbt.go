package main

// Changed Block Tracking (CBT) state of the simulator, computed from the
// disks' real bytes (never fixtures):
//
//   - Every CreateSnapshot freezes a sparse copy of each disk's live
//     -flat.vmdk next to it (<disk>-snap-<n>-flat.vmdk, plus a small text
//     descriptor <disk>-snap-<n>.vmdk), which is what the snapshot's disk
//     backing points at, as the frozen base file does on a real datastore.
//   - When tracking is on, the snapshot's disks (and the VM's live disks) get
//     changeId "<epoch uuid>/<n>", and per-block SHA-256 digests of the frozen
//     copy are kept in memory under that change id. QueryChangedDiskAreas
//     compares the digests of two points in time: blocks whose digests differ
//     are the changed areas (so, unlike a real .ctk, a block rewritten with
//     the same bytes is not reported; vSphere may report it, which is an
//     allowed false positive there).
//   - Turning tracking off and on again starts a new epoch (a fresh uuid) and
//     forgets the digests of the old one, so its change ids are refused.

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/vmware/govmomi/vim25/types"
)

const (
	defaultCbtBlockSize = 64 << 10  // 64 KiB
	defaultCbtWindow    = 256 << 20 // 256 MiB per QueryChangedDiskAreas answer

	// lseek whence values (Linux); the syscall package does not name them.
	seekData = 3
	seekHole = 4
)

type digest = [sha256.Size]byte

// diskDigests are the per-block digests of one disk at one change id.
type diskDigests struct {
	capacity int64
	blocks   []digest
}

// snapState is what the simulator adds to a VirtualMachineSnapshot.
type snapState struct {
	changeID string           // "" when taken with tracking off
	disks    map[int32]string // device key → frozen flat file (absolute path)
	files    []string         // every file to delete with the snapshot
}

// injectedFault is a pending test fault for QueryChangedDiskAreas (see testhooks.go).
type injectedFault struct {
	kind   string
	count  int
	served int
}

// vmState is the per-VM state of our extensions.
type vmState struct {
	epoch       string                            // CBT epoch uuid; "" while tracking is off
	seq         int                               // last sequence number handed out in this epoch
	digests     map[string]map[int32]*diskDigests // change id → device key → digests (current epoch only)
	snaps       map[string]*snapState             // snapshot moref value → state
	snapCounter int                               // names frozen copies (<disk>-snap-<n>)
	shutdown    string                            // guestShutdown mode of the spec
	fault       *injectedFault                    // TEST FAULT INJECTION (only with -test-hooks)
}

// extensions holds everything extendedVM / extendedSnapshot / the test hooks share.
type extensions struct {
	blockSize int64
	window    int64
	dsDirs    map[string]string // datastore name → local directory

	mu     sync.Mutex
	vms    map[string]*vmState // VM moref value → state
	byName map[string]string   // VM name → moref value (spec VMs)

	zeroMu sync.Mutex
	zeros  map[int64]digest // digest of n zero bytes
}

func newExtensions(spec *simSpec, dsDirs map[string]string) *extensions {
	e := &extensions{
		blockSize: defaultCbtBlockSize,
		window:    defaultCbtWindow,
		dsDirs:    dsDirs,
		vms:       map[string]*vmState{},
		byName:    map[string]string{},
		zeros:     map[int64]digest{},
	}
	if spec.CbtBlockSizeKiB > 0 {
		e.blockSize = spec.CbtBlockSizeKiB << 10
	}
	if spec.CbtWindowMiB > 0 {
		e.window = spec.CbtWindowMiB << 20
	}
	return e
}

// registerVMs records the spec VMs' names and per-VM options once they exist.
func (e *extensions) registerVMs(spec *simSpec, vms []vmReady) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, v := range vms {
		e.byName[v.Name] = v.Moref
		if i < len(spec.VMs) && spec.VMs[i].Name == v.Name {
			e.stateLocked(v.Moref).shutdown = spec.VMs[i].GuestShutdown
		}
	}
}

// stateLocked returns the VM's state, creating it; e.mu must be held.
func (e *extensions) stateLocked(moref string) *vmState {
	st := e.vms[moref]
	if st == nil {
		st = &vmState{digests: map[string]map[int32]*diskDigests{}, snaps: map[string]*snapState{}}
		e.vms[moref] = st
	}
	return st
}

// newEpochUUID returns a uuid in the form vSphere prints in change ids:
// "52 2d 7b 8f ac 61 51 cc-77 4c 7b ec 91 50 bb 7b".
func newEpochUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	hex := func(p []byte) string {
		parts := make([]string, len(p))
		for i, c := range p {
			parts[i] = fmt.Sprintf("%02x", c)
		}
		return strings.Join(parts, " ")
	}
	return hex(b[:8]) + "-" + hex(b[8:])
}

// ensureEpochLocked starts an epoch for a VM whose tracking is on but which
// has none yet (tracking enabled at creation); e.mu must be held.
func (st *vmState) ensureEpochLocked(tracking bool) {
	if tracking && st.epoch == "" {
		st.resetLocked(newEpochUUID())
	}
}

// resetLocked starts a new epoch ("" = tracking off) and forgets the old one's digests.
func (st *vmState) resetLocked(epoch string) {
	st.epoch = epoch
	st.seq = 0
	st.digests = map[string]map[int32]*diskDigests{}
}

// localPath maps "[ds] dir/file" to a file under the datastore's directory.
func (e *extensions) localPath(dsPath string) (string, error) {
	if !strings.HasPrefix(dsPath, "[") {
		return "", fmt.Errorf("not a datastore path: %q", dsPath)
	}
	end := strings.Index(dsPath, "]")
	if end < 0 {
		return "", fmt.Errorf("not a datastore path: %q", dsPath)
	}
	dir, ok := e.dsDirs[dsPath[1:end]]
	if !ok {
		return "", fmt.Errorf("unknown datastore in %q", dsPath)
	}
	rel := path.Clean("/" + strings.TrimSpace(dsPath[end+1:]))
	return filepath.Join(dir, filepath.FromSlash(rel)), nil
}

// flatOf is the raw extent of a flat descriptor: x.vmdk → x-flat.vmdk.
func flatOf(descriptor string) string {
	return strings.TrimSuffix(strings.TrimSuffix(descriptor, ".vmdk"), "-flat") + "-flat.vmdk"
}

func diskCapacity(d *types.VirtualDisk) int64 {
	if d.CapacityInBytes > 0 {
		return d.CapacityInBytes
	}
	return d.CapacityInKB * 1024
}

// dataExtents lists the [start,end) ranges of f holding data (not holes)
// within [from, to), with SEEK_DATA/SEEK_HOLE. A file system without them
// reports the whole range as data.
func dataExtents(f *os.File, from, to int64) ([][2]int64, error) {
	var out [][2]int64
	for off := from; off < to; {
		start, err := f.Seek(off, seekData)
		if err != nil {
			if errors.Is(err, syscall.ENXIO) {
				break // only a hole from off to the end of the file
			}
			if errors.Is(err, syscall.EINVAL) {
				return [][2]int64{{from, to}}, nil
			}
			return nil, err
		}
		if start >= to {
			break
		}
		end, err := f.Seek(start, seekHole)
		if err != nil {
			return nil, err
		}
		if end > to {
			end = to
		}
		out = append(out, [2]int64{start, end})
		off = end
	}
	return out, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// sparseCopy copies src to dst keeping holes: only data extents are read,
// and all-zero chunks in them are not written either. dst gets size bytes.
func sparseCopy(src, dst string, size int64) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(dst)
		}
	}()
	if err := out.Truncate(size); err != nil {
		return err
	}
	extents, err := dataExtents(in, 0, size)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for _, x := range extents {
		for off := x[0]; off < x[1]; {
			n := int64(len(buf))
			if off+n > x[1] {
				n = x[1] - off
			}
			got, rerr := in.ReadAt(buf[:n], off)
			if rerr != nil && rerr != io.EOF {
				return rerr
			}
			if got == 0 {
				break // the source is shorter than the disk: the rest reads as zeros
			}
			if !allZero(buf[:got]) {
				if _, err := out.WriteAt(buf[:got], off); err != nil {
					return err
				}
			}
			off += int64(got)
		}
	}
	return nil
}

// zeroDigest is the digest of a block of n zero bytes (what a hole reads as).
func (e *extensions) zeroDigest(n int64) digest {
	e.zeroMu.Lock()
	defer e.zeroMu.Unlock()
	d, ok := e.zeros[n]
	if !ok {
		d = sha256.Sum256(make([]byte, n))
		e.zeros[n] = d
	}
	return d
}

// blockLen is the length of block i of a disk of the given capacity.
func (e *extensions) blockLen(i, capacity int64) int64 {
	n := capacity - i*e.blockSize
	if n > e.blockSize {
		n = e.blockSize
	}
	return n
}

// digestBlocks computes the digests of blocks [b0, b1) of the disk image at
// file (capacity bytes; a shorter file reads as zeros past its end). Blocks
// lying entirely in holes are not read.
func (e *extensions) digestBlocks(file string, capacity, b0, b1 int64) ([]digest, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	from, to := b0*e.blockSize, b1*e.blockSize
	if to > capacity {
		to = capacity
	}
	extents, err := dataExtents(f, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]digest, 0, b1-b0)
	buf := make([]byte, e.blockSize)
	x := 0
	for i := b0; i < b1; i++ {
		start, n := i*e.blockSize, e.blockLen(i, capacity)
		for x < len(extents) && extents[x][1] <= start {
			x++
		}
		if x >= len(extents) || extents[x][0] >= start+n {
			out = append(out, e.zeroDigest(n))
			continue
		}
		got, err := f.ReadAt(buf[:n], start)
		if err != nil && err != io.EOF {
			return nil, err
		}
		clear(buf[got:n])
		out = append(out, sha256.Sum256(buf[:n]))
	}
	return out, nil
}

func (e *extensions) numBlocks(capacity int64) int64 {
	return (capacity + e.blockSize - 1) / e.blockSize
}

// changedAreas compares the digests of blocks [b0, b0+len(cur)) and returns
// the changed byte ranges, merged into runs and clipped to [winStart, winEnd).
// old == nil means "*": every block that is not all zeros counts.
func (e *extensions) changedAreas(old *diskDigests, cur []digest, b0, capacity, winStart, winEnd int64) []types.DiskChangeExtent {
	var areas []types.DiskChangeExtent
	for j, d := range cur {
		i := b0 + int64(j)
		n := e.blockLen(i, capacity)
		var changed bool
		if old == nil {
			changed = d != e.zeroDigest(n)
		} else if i < int64(len(old.blocks)) && e.blockLen(i, old.capacity) == n {
			changed = d != old.blocks[i]
		} else {
			// The disk grew since the change id: the new part counts as changed
			// unless it is all zeros.
			changed = d != e.zeroDigest(n)
		}
		if !changed {
			continue
		}
		s, t := i*e.blockSize, i*e.blockSize+n
		s, t = max(s, winStart), min(t, winEnd)
		if s >= t {
			continue
		}
		if k := len(areas) - 1; k >= 0 && areas[k].Start+areas[k].Length == s {
			areas[k].Length += t - s
		} else {
			areas = append(areas, types.DiskChangeExtent{Start: s, Length: t - s})
		}
	}
	return areas
}

// descriptorText is a minimal monolithicFlat-style VMDK descriptor for a frozen copy.
func descriptorText(flatBase string, capacity int64) string {
	return fmt.Sprintf(`# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="vmfs"

# Extent description
RW %d VMFS "%s"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.virtualHWVersion = "13"
`, (capacity+511)/512, flatBase)
}
