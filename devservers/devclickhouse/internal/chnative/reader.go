// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"bytes"
	"encoding/binary"
	"io"
	"slices"

	"github.com/ClickHouse/ch-go/proto"
)

// ch-go's decoders allocate a string's declared length before reading it,
// so a few hostile bytes could make the process allocate gigabytes, or die
// of it. packetReader therefore frames each packet first: it walks the
// packet's layout off the wire, with a bound on every string, copying its
// bytes as they arrive; ch-go then decodes the copy, whose strings are all
// there. The layout it walks is the one ch-go decodes, revision by
// revision.

const (
	// maxString bounds a string in a packet other than the query text.
	maxString = 16 << 20
	// maxPacketExtra bounds what a Query packet holds besides the query
	// text (settings, client info).
	maxPacketExtra = 64 << 20
	// copyChunk is how much of a string is read at a time.
	copyChunk = 64 << 10
)

// packetReader reads client packets from a connection.
type packetReader struct {
	r        *proto.Reader
	rec      proto.Buffer // the packet being framed
	maxQuery int
}

// code reads the code that starts a packet.
func (p *packetReader) code() (proto.ClientCode, error) {
	b, err := p.r.ReadByte()
	return proto.ClientCode(b), err
}

func (p *packetReader) byte() (byte, error) {
	b, err := p.r.ReadByte()
	if err != nil {
		return 0, err
	}
	p.rec.PutByte(b)
	return b, nil
}

func (p *packetReader) uvarint() (uint64, error) {
	v, err := binary.ReadUvarint(p.r)
	if err != nil {
		return 0, err
	}
	p.rec.PutUVarInt(v)
	return v, nil
}

func (p *packetReader) raw(n int) error {
	start := len(p.rec.Buf)
	p.rec.Buf = append(p.rec.Buf, make([]byte, n)...)
	_, err := io.ReadFull(p.r, p.rec.Buf[start:])
	return err
}

// str copies a string of at most limit bytes and returns its length.
func (p *packetReader) str(what string, limit int) (int, error) {
	n, err := binary.ReadUvarint(p.r)
	if err != nil {
		return 0, err
	}
	if n > uint64(limit) || len(p.rec.Buf)+int(n) > p.maxQuery+maxPacketExtra {
		return 0, newProtocolError(proto.ErrTooLargeStringSize,
			"Too large string size: %s of %d bytes (devclickhouse reads at most %d)", what, n, limit)
	}
	p.rec.PutUVarInt(n)
	// Copied as it arrives: a length that lies costs no more memory than
	// the bytes actually sent.
	for left := int(n); left > 0; {
		k := min(left, copyChunk)
		start := len(p.rec.Buf)
		p.rec.Buf = slices.Grow(p.rec.Buf, k)[:start+k]
		if _, err := io.ReadFull(p.r, p.rec.Buf[start:]); err != nil {
			return 0, unexpectedEOF(err)
		}
		left -= k
	}
	return int(n), nil
}

// skipStr reads a string that devclickhouse does not need.
func (p *packetReader) skipStr(what string) error {
	p.rec.Reset()
	_, err := p.str(what, maxString)
	p.rec.Reset()
	return err
}

// hello reads the rest of a Hello packet.
func (p *packetReader) hello() (proto.ClientHello, error) {
	p.rec.Reset()
	var h proto.ClientHello
	err := p.each(
		func() error { _, err := p.str("client name", maxString); return err },
		p.skipUvarint, p.skipUvarint, p.skipUvarint,
		func() error { _, err := p.str("database", maxString); return err },
		func() error { _, err := p.str("user", maxString); return err },
		func() error { _, err := p.str("password", maxString); return err },
	)
	if err != nil {
		return h, err
	}
	if err := h.Decode(p.decoder()); err != nil {
		return h, malformed("Hello", err)
	}
	return h, nil
}

// query reads the rest of a Query packet at revision rev.
func (p *packetReader) query(rev int) (proto.Query, error) {
	p.rec.Reset()
	var q proto.Query
	if _, err := p.str("query id", maxString); err != nil {
		return q, err
	}
	if proto.FeatureClientWriteInfo.In(rev) {
		if err := p.clientInfo(rev); err != nil {
			return q, err
		}
	}
	if err := p.settings("setting"); err != nil {
		return q, err
	}
	if proto.FeatureInterServerSecret.In(rev) {
		if _, err := p.str("inter-server secret", maxString); err != nil {
			return q, err
		}
	}
	if err := p.each(p.skipUvarint, p.skipUvarint); err != nil { // stage, compression
		return q, err
	}
	if _, err := p.str("query", p.maxQuery); err != nil {
		return q, err
	}
	if proto.FeatureParameters.In(rev) {
		if err := p.settings("parameter"); err != nil {
			return q, err
		}
	}
	if err := q.DecodeAware(p.decoder(), rev); err != nil {
		return q, malformed("Query", err)
	}
	return q, nil
}

// clientInfo copies the client info of a Query packet (ClientInfo::read).
func (p *packetReader) clientInfo(rev int) error {
	str := func(what string) func() error {
		return func() error { _, err := p.str(what, maxString); return err }
	}
	if err := p.each(p.skipByte, str("initial user"), str("initial query id"), str("initial address")); err != nil {
		return err
	}
	if proto.FeatureQueryStartTime.In(rev) {
		if err := p.raw(8); err != nil {
			return err
		}
	}
	iface, err := p.byte()
	if err != nil {
		return err
	}
	if proto.Interface(iface) != proto.InterfaceTCP {
		return newProtocolError(proto.ErrUnexpectedPacketFromClient,
			"Client info of a Query packet names interface %d; over TCP it must be 1 (TCP)", iface)
	}
	if err := p.each(str("OS user"), str("client hostname"), str("client name"), p.skipUvarint, p.skipUvarint, p.skipUvarint); err != nil {
		return err
	}
	if proto.FeatureQuotaKeyInClientInfo.In(rev) {
		if err := str("quota key")(); err != nil {
			return err
		}
	}
	if proto.FeatureDistributedDepth.In(rev) {
		if err := p.skipUvarint(); err != nil {
			return err
		}
	}
	if proto.FeatureVersionPatch.In(rev) {
		if err := p.skipUvarint(); err != nil {
			return err
		}
	}
	if proto.FeatureOpenTelemetry.In(rev) {
		hasTrace, err := p.byte()
		if err != nil {
			return err
		}
		if hasTrace == 1 {
			if err := p.each(func() error { return p.raw(16) }, str("trace state"), p.skipByte); err != nil {
				return err
			}
		}
	}
	if proto.FeatureParallelReplicas.In(rev) {
		return p.each(p.skipUvarint, p.skipUvarint, p.skipUvarint)
	}
	return nil
}

// settings copies a list of settings (or parameters): name, flags, value,
// ended by an empty name.
func (p *packetReader) settings(what string) error {
	for {
		n, err := p.str(what+" name", maxString)
		if err != nil || n == 0 {
			return err
		}
		if err := p.skipUvarint(); err != nil {
			return err
		}
		if _, err := p.str(what+" value", maxString); err != nil {
			return err
		}
	}
}

func (p *packetReader) skipUvarint() error { _, err := p.uvarint(); return err }

func (p *packetReader) skipByte() error { _, err := p.byte(); return err }

func (p *packetReader) each(steps ...func() error) error {
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// decoder reads the packet framed last. A fresh reader per packet: its
// buffer holds nothing of an earlier one.
func (p *packetReader) decoder() *proto.Reader {
	return proto.NewReader(bytes.NewReader(p.rec.Buf))
}

func malformed(packet string, err error) error {
	return newProtocolError(proto.ErrIncorrectData, "Malformed %s packet from client: %v", packet, err)
}

// unexpectedEOF turns an end of input inside a packet into
// io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
