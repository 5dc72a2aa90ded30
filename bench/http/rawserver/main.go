// rawserver: examples/http_server.cpp's design written in Go — a goroutine
// per connection over net.Conn, one fixed 8 KiB input buffer, a minimal
// parser that keeps only the headers it needs, responses formatted into a
// reused buffer, idle and write deadlines moved only when 1/16 stale — so
// that bench/http/run.sh (RAW=1) can compare the two runtimes doing the same
// work, next to net/http (bench/http/server.go).
//
// Only what the benchmark needs: GET / and GET /json (and 404, 400, 431);
// request bodies are not read (a request with one is answered 400 and the
// connection closed). SIGTERM or SIGINT: the listener closes and the process
// exits 0 (no graceful shutdown).
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

const (
	maxHead      = 8 * 1024
	idleTimeout  = 60 * time.Second
	readTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	helloBody    = "Hello, World!"
	jsonBody     = `{"message":"Hello, World!"}`
)

// lazyDeadline mirrors the C++ example: a deadline set for the same timeout
// less than 1/16 of it ago is left alone.
type lazyDeadline struct {
	when    time.Time
	timeout time.Duration
}

func (d *lazyDeadline) due(now time.Time, timeout time.Duration) bool {
	if d.timeout == timeout && now.Sub(d.when) < timeout/16 {
		return false
	}
	d.when, d.timeout = now, timeout
	return true
}

// The Date header's value; each connection keeps the last one it formatted
// and formats again when the second changes (the C++ example keeps one per
// worker thread).
func appendDate(out []byte, now time.Time) []byte {
	return now.UTC().AppendFormat(out, "Mon, 02 Jan 2006 15:04:05 GMT")
}

type conn struct {
	c          net.Conn
	buf        [maxHead]byte
	begin, end int
	out        []byte
	rd, wr     lazyDeadline
	dateSec    int64
	date       []byte
}

func (c *conn) appendResponse(status int, reason, ctype, body string, withBody, close bool) {
	now := time.Now()
	if s := now.Unix(); s != c.dateSec {
		c.date = appendDate(c.date[:0], now)
		c.dateSec = s
	}
	o := c.out
	o = append(o, "HTTP/1.1 "...)
	o = strconv.AppendInt(o, int64(status), 10)
	o = append(o, ' ')
	o = append(o, reason...)
	o = append(o, "\r\nContent-Type: "...)
	o = append(o, ctype...)
	o = append(o, "\r\nContent-Length: "...)
	o = strconv.AppendInt(o, int64(len(body)), 10)
	o = append(o, "\r\nDate: "...)
	o = append(o, c.date...)
	if close {
		o = append(o, "\r\nConnection: close"...)
	}
	o = append(o, "\r\n\r\n"...)
	if withBody {
		o = append(o, body...)
	}
	c.out = o
}

func (c *conn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	now := time.Now()
	if c.wr.due(now, writeTimeout) {
		c.c.SetWriteDeadline(now.Add(writeTimeout))
	}
	_, err := c.c.Write(c.out)
	c.out = c.out[:0]
	return err
}

func (c *conn) fill() error {
	if c.begin > 0 {
		copy(c.buf[:], c.buf[c.begin:c.end])
		c.end -= c.begin
		c.begin = 0
	}
	n, err := c.c.Read(c.buf[c.end:])
	c.end += n
	if n > 0 {
		return nil
	}
	return err
}

func (c *conn) setRead(timeout time.Duration) {
	now := time.Now()
	if c.rd.due(now, timeout) {
		c.c.SetReadDeadline(now.Add(timeout))
	}
}

var crlf2 = []byte("\r\n\r\n")

func (c *conn) serve() {
	defer c.c.Close()
	for {
		if c.begin == c.end {
			c.setRead(idleTimeout)
		}
		started := false
		var headLen int
		for {
			if i := bytes.Index(c.buf[c.begin:c.end], crlf2); i >= 0 {
				headLen = i + 4
				break
			}
			if c.begin == 0 && c.end == maxHead {
				c.appendResponse(431, "Request Header Fields Too Large", "text/plain; charset=utf-8",
					"431 Request Header Fields Too Large", true, true)
				c.flush()
				return
			}
			if c.flush() != nil {
				return
			}
			if c.begin != c.end && !started {
				c.setRead(readTimeout)
				started = true
			}
			if c.fill() != nil {
				return
			}
		}
		status, keep := c.handle(c.buf[c.begin : c.begin+headLen])
		c.begin += headLen
		if c.begin == c.end {
			c.begin, c.end = 0, 0
		}
		if status != 0 || !keep {
			c.flush()
			return
		}
		if c.begin == c.end || len(c.out) >= 64*1024 {
			if c.flush() != nil {
				return
			}
		}
	}
}

// handle parses a head and appends its response; returns a non-zero status
// for a malformed request, and whether to keep the connection.
func (c *conn) handle(head []byte) (int, bool) {
	lineEnd := bytes.IndexByte(head, '\n')
	line := bytes.TrimSuffix(head[:lineEnd], []byte("\r"))
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 {
		c.appendResponse(400, "Bad Request", "text/plain; charset=utf-8", "400 Bad Request", true, true)
		return 400, false
	}
	method, target, version := line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	keep := string(version) == "HTTP/1.1"
	hasHost := false
	rest := head[lineEnd+1:]
	for len(rest) > 0 {
		nl := bytes.IndexByte(rest, '\n')
		h := bytes.TrimSuffix(rest[:nl], []byte("\r"))
		rest = rest[nl+1:]
		if len(h) == 0 {
			break
		}
		colon := bytes.IndexByte(h, ':')
		if colon <= 0 {
			c.appendResponse(400, "Bad Request", "text/plain; charset=utf-8", "400 Bad Request", true, true)
			return 400, false
		}
		name, value := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Host")):
			hasHost = true
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				keep = true
			}
		case bytes.EqualFold(name, []byte("Content-Length")), bytes.EqualFold(name, []byte("Transfer-Encoding")):
			c.appendResponse(400, "Bad Request", "text/plain; charset=utf-8", "400 Bad Request", true, true)
			return 400, false
		}
	}
	if !hasHost && string(version) == "HTTP/1.1" {
		c.appendResponse(400, "Bad Request", "text/plain; charset=utf-8", "400 Bad Request", true, true)
		return 400, false
	}
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		target = target[:q]
	}
	withBody := string(method) != "HEAD"
	switch string(target) {
	case "/":
		c.appendResponse(200, "OK", "text/plain; charset=utf-8", helloBody, withBody, !keep)
	case "/json":
		c.appendResponse(200, "OK", "application/json", jsonBody, withBody, !keep)
	default:
		c.appendResponse(404, "Not Found", "text/plain; charset=utf-8", "404 page not found\n", withBody, !keep)
	}
	return 0, keep
}

func main() {
	addr := "127.0.0.1:8080"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		ln.Close()
		os.Exit(0)
	}()
	backoff := time.Duration(0)
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go (&conn{c: nc}).serve()
	}
}
