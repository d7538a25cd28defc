package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Hive reads keys and values of a Windows registry hive file (the regf format), enough to name a Windows guest:
// keys by path, case-insensitively as Windows does, and string and DWORD values. It only reads; a malformed hive is
// an error, never a panic, since the file comes from a disk we know nothing about.
type Hive struct {
	data []byte
	root uint32
}

const hbinStart = 0x1000 // cell offsets count from the first hive bin

func OpenHive(data []byte) (*Hive, error) {
	if len(data) < hbinStart+0x20 || string(data[:4]) != "regf" {
		return nil, errors.New("not a registry hive")
	}
	h := &Hive{data: data, root: binary.LittleEndian.Uint32(data[0x24:])}
	if _, err := h.cell(h.root, "nk"); err != nil {
		return nil, fmt.Errorf("the hive's root key: %w", err)
	}
	return h, nil
}

// cell returns the data of the cell at off (after its size field), checking its bounds and, when sig is given, its
// two-byte signature.
func (h *Hive) cell(off uint32, sig string) ([]byte, error) {
	at := int64(hbinStart) + int64(off)
	if off == 0xffffffff || at+4 > int64(len(h.data)) {
		return nil, fmt.Errorf("cell at %#x is outside the hive", off)
	}
	size := int64(int32(binary.LittleEndian.Uint32(h.data[at:])))
	if size < 0 {
		size = -size
	}
	if size < 8 || at+size > int64(len(h.data)) {
		return nil, fmt.Errorf("cell at %#x has a bad size", off)
	}
	c := h.data[at+4 : at+size]
	if sig != "" && string(c[:2]) != sig {
		return nil, fmt.Errorf("cell at %#x is not %q", off, sig)
	}
	return c, nil
}

type hiveKey struct {
	h  *Hive
	nk []byte
}

func (k hiveKey) name() string {
	n := int(binary.LittleEndian.Uint16(k.nk[0x48:]))
	if 0x4c+n > len(k.nk) {
		return ""
	}
	raw := k.nk[0x4c : 0x4c+n]
	if binary.LittleEndian.Uint16(k.nk[2:])&0x0020 != 0 { // KEY_COMP_NAME: one byte per character
		return string(raw)
	}
	return utf16le(raw)
}

// subkeyOffsets walks a subkey list: lf and lh (offset and hash pairs), li (offsets), ri (lists of lists).
func (h *Hive) subkeyOffsets(list uint32, depth int) ([]uint32, error) {
	if depth > 4 {
		return nil, errors.New("subkey lists nested too deep")
	}
	c, err := h.cell(list, "")
	if err != nil {
		return nil, err
	}
	if len(c) < 4 {
		return nil, errors.New("short subkey list")
	}
	n := int(binary.LittleEndian.Uint16(c[2:]))
	var out []uint32
	switch string(c[:2]) {
	case "lf", "lh":
		for i := 0; i < n && 4+i*8+4 <= len(c); i++ {
			out = append(out, binary.LittleEndian.Uint32(c[4+i*8:]))
		}
	case "li":
		for i := 0; i < n && 4+i*4+4 <= len(c); i++ {
			out = append(out, binary.LittleEndian.Uint32(c[4+i*4:]))
		}
	case "ri":
		for i := 0; i < n && 4+i*4+4 <= len(c); i++ {
			more, err := h.subkeyOffsets(binary.LittleEndian.Uint32(c[4+i*4:]), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		}
	default:
		return nil, fmt.Errorf("unknown subkey list %q", c[:2])
	}
	return out, nil
}

func (k hiveKey) child(name string) (hiveKey, error) {
	if binary.LittleEndian.Uint32(k.nk[0x14:]) == 0 {
		return hiveKey{}, fmt.Errorf("no key %q", name)
	}
	offs, err := k.h.subkeyOffsets(binary.LittleEndian.Uint32(k.nk[0x1c:]), 0)
	if err != nil {
		return hiveKey{}, err
	}
	for _, off := range offs {
		nk, err := k.h.cell(off, "nk")
		if err != nil || len(nk) < 0x4c {
			continue
		}
		if c := (hiveKey{k.h, nk}); strings.EqualFold(c.name(), name) {
			return c, nil
		}
	}
	return hiveKey{}, fmt.Errorf("no key %q", name)
}

// Key finds a key by its path from the hive's root, e.g. `Microsoft\Windows NT\CurrentVersion`.
func (h *Hive) Key(path string) (hiveKey, error) {
	nk, _ := h.cell(h.root, "nk")
	k := hiveKey{h, nk}
	for _, part := range strings.Split(strings.Trim(path, `\`), `\`) {
		if part == "" {
			continue
		}
		var err error
		if k, err = k.child(part); err != nil {
			return hiveKey{}, fmt.Errorf(`%s: %w`, path, err)
		}
	}
	return k, nil
}

const (
	regSZ       = 1
	regExpandSZ = 2
	regDWORD    = 4
)

// value returns a value's type and data. Data of four bytes or less sits in the offset field itself (the size's
// high bit says so); big data ("db" cells, over 16 KiB) is not needed for names and is refused.
func (k hiveKey) value(name string) (uint32, []byte, error) {
	n := int(binary.LittleEndian.Uint32(k.nk[0x24:]))
	if n == 0 {
		return 0, nil, fmt.Errorf("no value %q", name)
	}
	list, err := k.h.cell(binary.LittleEndian.Uint32(k.nk[0x28:]), "")
	if err != nil {
		return 0, nil, err
	}
	for i := 0; i < n && i*4+4 <= len(list); i++ {
		vk, err := k.h.cell(binary.LittleEndian.Uint32(list[i*4:]), "vk")
		if err != nil || len(vk) < 0x14 {
			continue
		}
		nameLen := int(binary.LittleEndian.Uint16(vk[2:]))
		if 0x14+nameLen > len(vk) {
			continue
		}
		raw := vk[0x14 : 0x14+nameLen]
		vname := string(raw)
		if binary.LittleEndian.Uint16(vk[0x10:])&0x0001 == 0 { // VALUE_COMP_NAME unset: UTF-16
			vname = utf16le(raw)
		}
		if !strings.EqualFold(vname, name) {
			continue
		}
		size := binary.LittleEndian.Uint32(vk[4:])
		typ := binary.LittleEndian.Uint32(vk[0x0c:])
		if size&0x80000000 != 0 {
			size &^= 0x80000000
			if size > 4 {
				return 0, nil, fmt.Errorf("value %q: bad inline size", name)
			}
			return typ, append([]byte(nil), vk[8:8+size]...), nil
		}
		if size > 16344 {
			return 0, nil, fmt.Errorf("value %q: %d bytes, more than a name needs", name, size)
		}
		data, err := k.h.cell(binary.LittleEndian.Uint32(vk[8:]), "")
		if err != nil || uint32(len(data)) < size {
			return 0, nil, fmt.Errorf("value %q: its data is outside the hive", name)
		}
		return typ, data[:size], nil
	}
	return 0, nil, fmt.Errorf("no value %q", name)
}

// String reads a REG_SZ or REG_EXPAND_SZ value.
func (k hiveKey) String(name string) (string, error) {
	typ, data, err := k.value(name)
	if err != nil {
		return "", err
	}
	if typ != regSZ && typ != regExpandSZ {
		return "", fmt.Errorf("value %q is of type %d, not a string", name, typ)
	}
	return strings.TrimRight(utf16le(data), "\x00"), nil
}

// DWORD reads a REG_DWORD value.
func (k hiveKey) DWORD(name string) (uint32, error) {
	typ, data, err := k.value(name)
	if err != nil {
		return 0, err
	}
	if typ != regDWORD || len(data) < 4 {
		return 0, fmt.Errorf("value %q is of type %d, not a DWORD", name, typ)
	}
	return binary.LittleEndian.Uint32(data), nil
}

func utf16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[i*2:])
	}
	return string(utf16.Decode(u))
}
