// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package chnative

import (
	"strings"
	"time"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/ClickHouse/ch-go/proto"

	"github.com/otelfailover/otelcol-failover/devservers/devclickhouse/internal/chsession"
)

// Server packets are built in c.out and written to the connection's
// buffered writer; flush sends them. A write error sticks in the buffered
// writer and comes out of flush.

// frameSize is the uncompressed size of one compressed frame of a Data
// block (ClickHouse's max_compress_block_size).
const frameSize = 1 << 20

func (c *conn) send() {
	_, _ = c.w.Write(c.out.Buf)
	c.out.Reset()
}

func (c *conn) flush() error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.opts.SendTimeout))
	return c.w.Flush()
}

func (c *conn) writeHello() {
	major, minor, patch := versionParts(c.sess.Version())
	hello := proto.ServerHello{
		Name: "ClickHouse", Major: major, Minor: minor, Revision: serverRevision,
		Timezone: c.sess.Timezone(), DisplayName: "devclickhouse", Patch: patch,
	}
	hello.EncodeAware(&c.out, c.rev)
	c.send()
}

func (c *conn) writePong() {
	proto.ServerCodePong.Encode(&c.out)
	c.send()
}

func (c *conn) writeEndOfStream() {
	proto.ServerCodeEndOfStream.Encode(&c.out)
	c.send()
}

// writeException sends exc as ClickHouse does (writeException): its code,
// "DB::Exception", the message, no stack trace, no nested exception.
func (c *conn) writeException(exc *chsession.Exception) {
	if c.sess.Verbose() || exc.Code == int(proto.ErrStdException) {
		c.srv.log.Printf("native: %s: error: %s", c.nc.RemoteAddr(), chsession.Truncate(exc.Text, 500))
	}
	proto.ServerCodeException.Encode(&c.out)
	e := proto.Exception{Code: proto.Error(exc.Code), Name: "DB::Exception", Message: exc.Message()}
	e.EncodeAware(&c.out, c.rev)
	c.send()
}

func (c *conn) writeProgress(p proto.Progress) {
	proto.ServerCodeProgress.Encode(&c.out)
	p.EncodeAware(&c.out, c.rev)
	c.send()
}

func (c *conn) writeProfile(p proto.Profile) {
	p.EncodeAware(&c.out, c.rev) // with its packet code
	c.send()
}

// writeData sends one block, encoded at the connection's revision: after
// the packet code and the (empty) table name, in compressed frames when
// the query asked for compression.
func (c *conn) writeData(block []byte) error {
	proto.ServerCodeData.Encode(&c.out)
	c.out.PutString("")
	if !c.compress {
		c.out.PutRaw(block)
		c.send()
		return nil
	}
	w := c.compressor()
	for len(block) > 0 {
		n := min(len(block), frameSize)
		if err := w.Compress(block[:n]); err != nil {
			c.out.Reset()
			return err
		}
		c.out.PutRaw(w.Data)
		block = block[n:]
	}
	c.send()
	return nil
}

// compressor returns the connection's writer for the compression method
// of the current query.
func (c *conn) compressor() *compress.Writer {
	if c.writers == nil {
		c.writers = make(map[compress.Method]*compress.Writer)
	}
	w, ok := c.writers[c.method]
	if !ok {
		w = compress.NewWriter(compress.LevelZero, c.method)
		c.writers[c.method] = w
	}
	return w
}

// compressionMethod is what the server compresses its blocks with: the
// network_compression_method setting (LZ4 by default, whatever the client
// compresses its own blocks with; every client reads every method).
func compressionMethod(settings []chsession.Setting) compress.Method {
	for _, st := range settings {
		if st.Name != "network_compression_method" {
			continue
		}
		switch strings.ToUpper(strings.TrimSpace(st.Value)) {
		case "ZSTD":
			return compress.ZSTD
		case "LZ4HC":
			return compress.LZ4HC
		case "NONE":
			return compress.None
		}
	}
	return compress.LZ4
}

// versionParts reads "26.7.2.1" as major 26, minor 7, patch 2.
func versionParts(v string) (major, minor, patch int) {
	parts := strings.Split(v, ".")
	nums := make([]int, 3)
	for i := 0; i < 3 && i < len(parts); i++ {
		for _, ch := range parts[i] {
			if ch < '0' || ch > '9' {
				break
			}
			nums[i] = nums[i]*10 + int(ch-'0')
		}
	}
	return nums[0], nums[1], nums[2]
}
