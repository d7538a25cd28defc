package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Disk is one block device of the machine, served read-only to the destination.
type Disk struct {
	Index     int    `json:"index"`
	Name      string `json:"name"`
	SizeBytes int64  `json:"sizeBytes"`
	Model     string `json:"model,omitempty"`
	Serial    string `json:"serial,omitempty"`
	path      string
}

type Nic struct {
	Name      string   `json:"name"`
	Mac       string   `json:"mac"`
	Link      bool     `json:"link"`
	Addresses []string `json:"addresses,omitempty"`
}

type CPU struct {
	Sockets        int `json:"sockets"`
	CoresPerSocket int `json:"coresPerSocket"`
	Threads        int `json:"threads"`
}

// Machine is what the agent found: reported at enrollment, shown in the migration's status.
type Machine struct {
	FirmwareUUID string  `json:"firmwareUuid,omitempty"`
	Firmware     string  `json:"firmware"`
	CPU          CPU     `json:"cpu"`
	MemoryBytes  int64   `json:"memoryBytes"`
	Nics         []Nic   `json:"nics"`
	Disks        []Disk  `json:"disks"`
	Guest        GuestOS `json:"guest"`
	BootID       string  `json:"bootId"`
	AgentVersion string  `json:"agentVersion"`
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func discoverCPU() CPU {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return CPU{Sockets: 1, CoresPerSocket: 1, Threads: 1}
	}
	defer f.Close()
	packages := map[string]bool{}
	threads, coresPerSocket := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			threads++
		case "physical id":
			packages[v] = true
		case "cpu cores":
			if n, err := strconv.Atoi(v); err == nil {
				coresPerSocket = n
			}
		}
	}
	sockets := len(packages)
	if sockets == 0 {
		sockets = 1
	}
	if coresPerSocket == 0 {
		coresPerSocket = threads / sockets
	}
	if coresPerSocket == 0 {
		coresPerSocket = 1
	}
	return CPU{Sockets: sockets, CoresPerSocket: coresPerSocket, Threads: threads}
}

// discoverMemory counts the online memory blocks (the installed memory, not MemTotal, which leaves out what the kernel
// reserved); without memory block devices it falls back to MemTotal.
func discoverMemory() int64 {
	if bs := readTrimmed("/sys/devices/system/memory/block_size_bytes"); bs != "" {
		size, err := strconv.ParseInt(bs, 16, 64)
		blocks, _ := filepath.Glob("/sys/devices/system/memory/memory*")
		var total int64
		for _, b := range blocks {
			if readTrimmed(filepath.Join(b, "online")) == "1" {
				total += size
			}
		}
		if err == nil && total > 0 {
			return total
		}
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); n == 1 {
			return kb * 1024
		}
	}
	return 0
}

func discoverNics() []Nic {
	entries, _ := os.ReadDir("/sys/class/net")
	var nics []Nic
	for _, e := range entries {
		name := e.Name()
		if name == "lo" {
			continue
		}
		dir := filepath.Join("/sys/class/net", name)
		// Only hardware: virtual interfaces have no device link.
		if _, err := os.Stat(filepath.Join(dir, "device")); err != nil {
			continue
		}
		n := Nic{Name: name, Mac: readTrimmed(filepath.Join(dir, "address")), Link: readTrimmed(filepath.Join(dir, "carrier")) == "1"}
		if iface, err := net.InterfaceByName(name); err == nil {
			addrs, _ := iface.Addrs()
			for _, a := range addrs {
				if ip, _, err := net.ParseCIDR(a.String()); err == nil && !ip.IsLinkLocalUnicast() {
					n.Addresses = append(n.Addresses, ip.String())
				}
			}
		}
		nics = append(nics, n)
	}
	sort.Slice(nics, func(i, j int) bool { return nics[i].Name < nics[j].Name })
	return nics
}

// isBootMedium tells whether a block device holds an ISO 9660 file system (the ISO the agent booted from, when it
// is written to a USB stick or attached as a disk): it is not one of the machine's disks.
func isBootMedium(dev string) bool {
	f, err := os.Open(dev)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 5)
	if _, err := f.ReadAt(buf, 32769); err != nil {
		return false
	}
	return string(buf) == "CD001"
}

func diskSerial(sys string) string {
	for _, p := range []string{"serial", "device/serial", "device/wwid"} {
		if s := readTrimmed(filepath.Join(sys, p)); s != "" {
			return s
		}
	}
	// SCSI unit serial number page: a four-byte header, then the serial.
	if b, err := os.ReadFile(filepath.Join(sys, "device/vpd_pg80")); err == nil && len(b) > 4 {
		return strings.TrimSpace(string(b[4:]))
	}
	return ""
}

func discoverDisks() []Disk {
	entries, _ := os.ReadDir("/sys/block")
	var disks []Disk
	for _, e := range entries {
		name := e.Name()
		skip := false
		for _, p := range []string{"loop", "ram", "sr", "zram", "fd", "dm-", "md", "nbd"} {
			if strings.HasPrefix(name, p) {
				skip = true
			}
		}
		if skip {
			continue
		}
		sys := filepath.Join("/sys/block", name)
		sectors, err := strconv.ParseInt(readTrimmed(filepath.Join(sys, "size")), 10, 64)
		if err != nil || sectors == 0 {
			continue
		}
		dev := "/dev/" + name
		if isBootMedium(dev) {
			continue
		}
		disks = append(disks, Disk{Name: name, SizeBytes: sectors * 512, Model: readTrimmed(filepath.Join(sys, "device/model")), Serial: diskSerial(sys), path: dev})
	}
	sort.Slice(disks, func(i, j int) bool { return disks[i].Name < disks[j].Name })
	for i := range disks {
		disks[i].Index = i
	}
	return disks
}

// fileDisks are disk images named on the command line, for running the agent outside its ISO (development and the
// fast tests): the serial is derived from the path, so the same files give the same machine.
func fileDisks(paths []string) ([]Disk, error) {
	var disks []Disk
	for i, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", p, err)
		}
		sum := sha256.Sum256([]byte(abs))
		disks = append(disks, Disk{Index: i, Name: filepath.Base(abs), SizeBytes: st.Size(), Model: "disk image", Serial: "file-" + hex.EncodeToString(sum[:8]), path: abs})
	}
	return disks, nil
}

func bootID() string {
	if id := readTrimmed("/proc/sys/kernel/random/boot_id"); id != "" {
		return id
	}
	return randomHex(16)
}

func discoverFirmware() string {
	if _, err := os.Stat("/sys/firmware/efi"); err == nil {
		return "uefi"
	}
	return "bios"
}
