package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unsafe"
)

// GuestOS is what the agent recognised on the disks. Name is the computer name, or the machine's IP address when
// no OS could be read (LVM, encryption, an unknown file system), as the destination needs some name to show.
type GuestOS struct {
	Type       string `json:"type"` // linux, windows or unknown
	Distro     string `json:"distro,omitempty"`
	Version    string `json:"version,omitempty"`
	PrettyName string `json:"prettyName,omitempty"`
	Hostname   string `json:"hostname,omitempty"`
	// Windows, from the registry.
	ProductName      string   `json:"productName,omitempty"`
	Edition          string   `json:"edition,omitempty"`
	Build            string   `json:"build,omitempty"`
	DisplayVersion   string   `json:"displayVersion,omitempty"`
	InstallationType string   `json:"installationType,omitempty"`
	ComputerName     string   `json:"computerName,omitempty"`
	Name             string   `json:"name"`
	Encrypted        bool     `json:"encrypted,omitempty"`
	LVM              bool     `json:"lvm,omitempty"`
	Notes            []string `json:"notes,omitempty"`
}

// BLKROSET: the kernel then refuses every write to the device, whatever opens it later.
const blkROSet = 0x125d

func setReadOnly(dev string) error {
	f, err := os.Open(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	one := int32(1)
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), blkROSet, uintptr(unsafe.Pointer(&one))); e != 0 {
		return e
	}
	return nil
}

func partitionsOf(disk Disk) []string {
	entries, _ := os.ReadDir(filepath.Join("/sys/block", disk.Name))
	var parts []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join("/sys/block", disk.Name, e.Name(), "partition")); err == nil {
			parts = append(parts, "/dev/"+e.Name())
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		parts = []string{disk.path}
	}
	return parts
}

func readAt(dev string, off int64, n int) []byte {
	f, err := os.Open(dev)
	if err != nil {
		return nil
	}
	defer f.Close()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil
	}
	return buf
}

// Mount options that replay no journal: a read-only mount of a dirty ext4 or XFS would otherwise write the log.
var readOnlyMounts = []struct{ fstype, data string }{
	{"ext4", "noload"},
	{"xfs", "norecovery"},
	{"vfat", ""},
}

func parseOsRelease(text string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			out[k] = strings.Trim(v, `"'`)
		}
	}
	return out
}

// discoverGuest protects every disk and partition against writes first (BLKROSET), then mounts the partitions one
// at a time, read-only without journal replay, looking for an OS.
func discoverGuest(disks []Disk, nics []Nic) GuestOS {
	g := GuestOS{Type: "unknown"}
	mnt := "/run/vmigrate-agent/mnt"
	_ = os.MkdirAll(mnt, 0o700)
	for _, d := range disks {
		if err := setReadOnly(d.path); err != nil {
			g.Notes = append(g.Notes, "could not set "+d.path+" read-only: "+err.Error())
			continue
		}
		for _, part := range partitionsOf(d) {
			if part != d.path {
				if err := setReadOnly(part); err != nil {
					g.Notes = append(g.Notes, "could not set "+part+" read-only: "+err.Error())
					continue
				}
			}
			head := readAt(part, 0, 1024)
			if opaqueVolume(part, head, &g) {
				continue
			}
			if g.Type != "unknown" {
				continue
			}
			if isNTFS(head) {
				lookIntoWindows(ntfsReader(part), part, &g)
				continue
			}
			for _, m := range readOnlyMounts {
				if err := syscall.Mount(part, mnt, m.fstype, syscall.MS_RDONLY|syscall.MS_NOATIME, m.data); err != nil {
					continue
				}
				readGuestFiles(mnt, &g)
				_ = syscall.Unmount(mnt, 0)
				break
			}
		}
	}
	g.nameIt(nics)
	return g
}

// opaqueVolume notes a volume the agent does not look into: LUKS (copied as it is, encrypted) or an LVM physical
// volume. True when it is one.
func opaqueVolume(part string, head []byte, g *GuestOS) bool {
	if bytes.HasPrefix(head, []byte("LUKS\xba\xbe")) {
		g.Encrypted = true
		g.Notes = append(g.Notes, part+" is LUKS-encrypted: copied as it is")
		return true
	}
	if len(head) >= 520 && string(head[512:520]) == "LABELONE" {
		g.LVM = true
		g.Notes = append(g.Notes, part+" is an LVM physical volume: not looked into")
		return true
	}
	return false
}

// nameIt: the guest's host name, else the machine's first IPv4 address.
func (g *GuestOS) nameIt(nics []Nic) {
	g.Name = g.Hostname
	for _, n := range nics {
		for _, a := range n.Addresses {
			if g.Name == "" && !strings.Contains(a, ":") {
				g.Name = a
			}
		}
	}
}

// discoverGuestInFiles looks into disk images given on the command line (the agent run outside the ISO): a file is
// not a block device and is not mounted, so only whole-image volumes are looked into: LUKS and LVM noted, NTFS read
// with ntfs-3g's tools.
func discoverGuestInFiles(disks []Disk, nics []Nic) GuestOS {
	g := GuestOS{Type: "unknown"}
	for _, d := range disks {
		head := readAt(d.path, 0, 1024)
		if opaqueVolume(d.path, head, &g) {
			continue
		}
		if g.Type == "unknown" && isNTFS(head) {
			lookIntoWindows(ntfsReader(d.path), d.path, &g)
		}
	}
	if g.Type == "unknown" && !g.Encrypted && !g.LVM {
		g.Notes = append(g.Notes, "disk images given on the command line: only whole-image LUKS, LVM and NTFS volumes are looked into")
	}
	g.nameIt(nics)
	return g
}

func readGuestFiles(root string, g *GuestOS) {
	if b, err := os.ReadFile(filepath.Join(root, "etc/os-release")); err == nil {
		rel := parseOsRelease(string(b))
		g.Type, g.Distro, g.Version, g.PrettyName = "linux", rel["ID"], rel["VERSION_ID"], rel["PRETTY_NAME"]
		g.Hostname = strings.TrimSpace(readTrimmed(filepath.Join(root, "etc/hostname")))
		return
	}
	lookIntoWindows(dirReader(root), root, g)
}

// lookIntoWindows reads the registry of a Windows on a volume. A volume without Windows (a data or boot partition)
// leaves g as it was; a Windows whose registry cannot be read is still named Windows, with a note saying why.
func lookIntoWindows(read func(path string) ([]byte, error), where string, g *GuestOS) {
	w, err := readWindows(read)
	switch {
	case err == nil:
		g.setWindows(w)
	case !errors.Is(err, errNotWindows):
		g.Type = "windows"
		g.Notes = append(g.Notes, "Windows found on "+where+" but its registry could not be read: "+err.Error())
	}
}
