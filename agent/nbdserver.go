package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// A read-only NBD server (fixed newstyle, structured replies, base:allocation) for one disk, on a connection the agent
// opened to the destination. Block status reads the range here and reports all-zero runs, so zeros never cross the
// network; the disk is only ever read.

const (
	nbdMagic             = 0x4e42444d41474943
	nbdIHaveOpt          = 0x49484156454f5054
	nbdRepMagic          = 0x3e889045565a9
	nbdRequestMagic      = 0x25609513
	nbdSimpleReplyMagic  = 0x67446698
	nbdStructReplyMagic  = 0x668e33ef
	optExportName        = 1
	optAbort             = 2
	optInfo              = 6
	optGo                = 7
	optStructuredReply   = 8
	optSetMetaContext    = 10
	repAck               = 1
	repInfo              = 3
	repMetaContext       = 4
	repErrUnsup          = 0x80000001
	repErrInvalid        = 0x80000003
	infoExport           = 0
	infoBlockSize        = 3
	flagHasFlags         = 1 << 0
	flagReadOnly         = 1 << 1
	flagCanMultiConn     = 1 << 8
	cmdRead              = 0
	cmdDisc              = 2
	cmdFlush             = 3
	cmdBlockStatus       = 7
	replyFlagDone        = 1
	replyTypeNone        = 0
	replyTypeOffsetData  = 1
	replyTypeBlockStatus = 5
	replyTypeError       = 32769
	stateZero            = 2
	baseAllocationID     = 1
	maxRequest           = 8 << 20
	zeroGranule          = 64 << 10
	maxStatusSpan        = 8 << 20
	eIO                  = 5
	ePerm                = 1
	eInval               = 22
)

// servedBytes counts bytes read for the destination (data replies), across all connections of this run.
var servedBytes atomic.Int64

type nbdConn struct {
	rw         *bufio.ReadWriter
	disk       Disk
	file       *os.File
	structured bool
	metaCtx    bool
}

func serveNBD(conn io.ReadWriter, disk Disk) error {
	f, err := os.Open(disk.path)
	if err != nil {
		return err
	}
	defer f.Close()
	c := &nbdConn{rw: bufio.NewReadWriter(bufio.NewReaderSize(conn, 64<<10), bufio.NewWriterSize(conn, 256<<10)), disk: disk, file: f}
	done, err := c.negotiate()
	if err != nil || done {
		return err
	}
	return c.transmit()
}

func (c *nbdConn) u16(v uint16) { _ = binary.Write(c.rw, binary.BigEndian, v) }
func (c *nbdConn) u32(v uint32) { _ = binary.Write(c.rw, binary.BigEndian, v) }
func (c *nbdConn) u64(v uint64) { _ = binary.Write(c.rw, binary.BigEndian, v) }

func (c *nbdConn) optReply(opt, typ uint32, data []byte) {
	c.u64(nbdRepMagic)
	c.u32(opt)
	c.u32(typ)
	c.u32(uint32(len(data)))
	_, _ = c.rw.Write(data)
}

func (c *nbdConn) transmissionFlags() uint16 {
	return flagHasFlags | flagReadOnly | flagCanMultiConn
}

func (c *nbdConn) negotiate() (done bool, err error) {
	c.u64(nbdMagic)
	c.u64(nbdIHaveOpt)
	c.u16(1 | 2) // fixed newstyle, no zeroes
	if err := c.rw.Flush(); err != nil {
		return false, err
	}
	var clientFlags uint32
	if err := binary.Read(c.rw, binary.BigEndian, &clientFlags); err != nil {
		return false, err
	}
	noZeroes := clientFlags&2 != 0
	for {
		var hdr struct {
			Magic uint64
			Opt   uint32
			Len   uint32
		}
		if err := binary.Read(c.rw, binary.BigEndian, &hdr); err != nil {
			return false, err
		}
		if hdr.Magic != nbdIHaveOpt || hdr.Len > 4096 {
			return false, errors.New("bad NBD option header")
		}
		data := make([]byte, hdr.Len)
		if _, err := io.ReadFull(c.rw, data); err != nil {
			return false, err
		}
		switch hdr.Opt {
		case optStructuredReply:
			c.structured = true
			c.optReply(hdr.Opt, repAck, nil)
		case optSetMetaContext:
			if !c.structured {
				c.optReply(hdr.Opt, repErrInvalid, []byte("structured replies first"))
				break
			}
			// export name, then the queries; only base:allocation is known.
			queries := parseMetaQueries(data)
			for _, q := range queries {
				if q == "base:allocation" {
					c.metaCtx = true
					reply := make([]byte, 4+len(q))
					binary.BigEndian.PutUint32(reply, baseAllocationID)
					copy(reply[4:], q)
					c.optReply(hdr.Opt, repMetaContext, reply)
				}
			}
			c.optReply(hdr.Opt, repAck, nil)
		case optInfo, optGo:
			info := make([]byte, 12)
			binary.BigEndian.PutUint16(info, infoExport)
			binary.BigEndian.PutUint64(info[2:], uint64(c.disk.SizeBytes))
			binary.BigEndian.PutUint16(info[10:], c.transmissionFlags())
			c.optReply(hdr.Opt, repInfo, info)
			bs := make([]byte, 14)
			binary.BigEndian.PutUint16(bs, infoBlockSize)
			binary.BigEndian.PutUint32(bs[2:], 1)
			binary.BigEndian.PutUint32(bs[6:], 4096)
			binary.BigEndian.PutUint32(bs[10:], maxRequest)
			c.optReply(hdr.Opt, repInfo, bs)
			c.optReply(hdr.Opt, repAck, nil)
			if hdr.Opt == optGo {
				return false, c.rw.Flush()
			}
		case optExportName:
			c.u64(uint64(c.disk.SizeBytes))
			c.u16(c.transmissionFlags())
			if !noZeroes {
				_, _ = c.rw.Write(make([]byte, 124))
			}
			return false, c.rw.Flush()
		case optAbort:
			c.optReply(hdr.Opt, repAck, nil)
			return true, c.rw.Flush()
		default:
			c.optReply(hdr.Opt, repErrUnsup, nil)
		}
		if err := c.rw.Flush(); err != nil {
			return false, err
		}
	}
}

func parseMetaQueries(data []byte) []string {
	if len(data) < 8 {
		return nil
	}
	nameLen := binary.BigEndian.Uint32(data)
	p := 4 + int(nameLen)
	if p+4 > len(data) {
		return nil
	}
	n := binary.BigEndian.Uint32(data[p:])
	p += 4
	var out []string
	for i := uint32(0); i < n && p+4 <= len(data); i++ {
		l := int(binary.BigEndian.Uint32(data[p:]))
		p += 4
		if p+l > len(data) {
			break
		}
		out = append(out, string(data[p:p+l]))
		p += l
	}
	return out
}

func (c *nbdConn) transmit() error {
	buf := make([]byte, maxRequest)
	for {
		var req struct {
			Magic  uint32
			Flags  uint16
			Type   uint16
			Handle uint64
			Offset uint64
			Length uint32
		}
		if err := binary.Read(c.rw, binary.BigEndian, &req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if req.Magic != nbdRequestMagic {
			return fmt.Errorf("bad NBD request magic %#x", req.Magic)
		}
		inRange := req.Offset+uint64(req.Length) <= uint64(c.disk.SizeBytes)
		switch req.Type {
		case cmdDisc:
			return c.rw.Flush()
		case cmdRead:
			if !inRange || req.Length > maxRequest {
				c.replyError(req.Handle, eInval)
				break
			}
			data := buf[:req.Length]
			if _, err := c.file.ReadAt(data, int64(req.Offset)); err != nil {
				c.replyError(req.Handle, eIO)
				break
			}
			sendLimit.wait(len(data))
			servedBytes.Add(int64(len(data)))
			if c.structured {
				c.chunkHeader(replyFlagDone, replyTypeOffsetData, req.Handle, 8+len(data))
				c.u64(req.Offset)
			} else {
				c.simpleReply(req.Handle, 0)
			}
			_, _ = c.rw.Write(data)
		case cmdFlush:
			c.replyOK(req.Handle)
		case cmdBlockStatus:
			if !c.metaCtx || !inRange || req.Length == 0 {
				c.replyError(req.Handle, eInval)
				break
			}
			descs, err := c.zeroRuns(int64(req.Offset), int64(req.Length), buf)
			if err != nil {
				c.replyError(req.Handle, eIO)
				break
			}
			c.chunkHeader(replyFlagDone, replyTypeBlockStatus, req.Handle, 4+8*len(descs))
			c.u32(baseAllocationID)
			for _, d := range descs {
				c.u32(d[0])
				c.u32(d[1])
			}
		default:
			// Writes, trims and the rest: the disks are read-only.
			c.replyError(req.Handle, ePerm)
		}
		if c.rw.Reader.Buffered() == 0 {
			if err := c.rw.Flush(); err != nil {
				return err
			}
		}
	}
}

// zeroRuns reads up to maxStatusSpan bytes of the range and describes it as runs of data and of zeros.
func (c *nbdConn) zeroRuns(off, length int64, buf []byte) ([][2]uint32, error) {
	if length > maxStatusSpan {
		length = maxStatusSpan
	}
	data := buf[:length]
	if _, err := c.file.ReadAt(data, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var descs [][2]uint32
	for p := int64(0); p < length; {
		n := int64(zeroGranule)
		if p+n > length {
			n = length - p
		}
		flags := uint32(0)
		if allZero(data[p : p+n]) {
			flags = stateZero
		}
		if k := len(descs); k > 0 && descs[k-1][1] == flags {
			descs[k-1][0] += uint32(n)
		} else {
			descs = append(descs, [2]uint32{uint32(n), flags})
		}
		p += n
	}
	return descs, nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func (c *nbdConn) simpleReply(handle uint64, errno uint32) {
	c.u32(nbdSimpleReplyMagic)
	c.u32(errno)
	c.u64(handle)
}

func (c *nbdConn) chunkHeader(flags, typ uint16, handle uint64, length int) {
	c.u32(nbdStructReplyMagic)
	c.u16(flags)
	c.u16(typ)
	c.u64(handle)
	c.u32(uint32(length))
}

func (c *nbdConn) replyOK(handle uint64) {
	if c.structured {
		c.chunkHeader(replyFlagDone, replyTypeNone, handle, 0)
		return
	}
	c.simpleReply(handle, 0)
}

func (c *nbdConn) replyError(handle uint64, errno uint32) {
	if c.structured {
		c.chunkHeader(replyFlagDone, replyTypeError, handle, 6)
		c.u32(errno)
		c.u16(0)
		return
	}
	c.simpleReply(handle, errno)
}
