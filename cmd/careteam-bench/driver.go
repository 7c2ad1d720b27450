package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// driver sends one HTTP request for a worker and reads the whole answer.
// Each worker of a scenario has its own number; a driver may keep one
// connection per worker.
type driver interface {
	// do sends the request and returns the status and, when wantBody is
	// set, the body (valid until the worker's next request).
	do(ctx context.Context, worker int, method, path string, body []byte, wantBody bool) (int, []byte, error)
	describe() string
	close()
}

// newDriver returns the load generator's HTTP client: "raw", a minimal
// HTTP/1.1 client over one kept-alive connection per worker, or "nethttp",
// Go's net/http client.
func newDriver(kind, baseURL, apiKey string, workers int) (driver, error) {
	switch kind {
	case "raw":
		return newRawDriver(baseURL, apiKey, workers)
	case "nethttp":
		return &netDriver{client: newClient(workers), baseURL: baseURL, apiKey: apiKey}, nil
	}
	return nil, fmt.Errorf("-driver %q: want raw or nethttp", kind)
}

// netDriver is Go's net/http client.
type netDriver struct {
	client          *http.Client
	baseURL, apiKey string
}

func (d *netDriver) describe() string { return "careteam-bench (Go net/http)" }
func (d *netDriver) close()           { d.client.CloseIdleConnections() }

func (d *netDriver) do(ctx context.Context, _ int, method, path string, body []byte, wantBody bool) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.baseURL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if d.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+d.apiKey)
	}
	res, err := d.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	if wantBody {
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, b, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil, err
}

func newClient(conns int) *http.Client {
	tr := &http.Transport{
		// Never a proxy: the traffic goes to the loopback service only.
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        4 * conns,
		MaxIdleConnsPerHost: 2 * conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// rawDriver speaks just enough HTTP/1.1 for the benchmark: it writes each
// request in one system call from a buffer it reuses, and reads the status
// line, the headers it needs (Content-Length, Transfer-Encoding,
// Connection) and the body. It does what wrk does for a C load generator:
// the client's own CPU stays small next to the service's, as pgbench's
// does next to PostgreSQL's.
type rawDriver struct {
	addr, host, auth string
	mu               sync.Mutex
	conns            []*rawConn
}

type rawConn struct {
	nc   net.Conn
	br   *bufio.Reader
	req  []byte
	body []byte
}

// requestTimeout bounds one request of the raw driver.
const requestTimeout = 30 * time.Second

func newRawDriver(baseURL, apiKey string, workers int) (*rawDriver, error) {
	addr, ok := strings.CutPrefix(baseURL, "http://")
	if !ok || strings.Contains(addr, "/") {
		return nil, fmt.Errorf("raw driver: %q is not http://host:port", baseURL)
	}
	d := &rawDriver{addr: addr, host: addr, conns: make([]*rawConn, workers)}
	if apiKey != "" {
		d.auth = "Bearer " + apiKey
	}
	return d, nil
}

func (d *rawDriver) describe() string { return "careteam-bench (raw HTTP/1.1, keep-alive)" }

func (d *rawDriver) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, c := range d.conns {
		if c != nil {
			c.nc.Close()
			d.conns[i] = nil
		}
	}
}

func (d *rawDriver) conn(ctx context.Context, worker int) (c *rawConn, reused bool, err error) {
	d.mu.Lock()
	if worker >= len(d.conns) {
		d.conns = append(d.conns, make([]*rawConn, worker+1-len(d.conns))...)
	}
	c = d.conns[worker]
	d.mu.Unlock()
	if c != nil {
		return c, true, nil
	}
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nc, err := dialer.DialContext(dctx, "tcp", d.addr)
	if err != nil {
		return nil, false, err
	}
	c = &rawConn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10)}
	d.mu.Lock()
	d.conns[worker] = c
	d.mu.Unlock()
	return c, false, nil
}

func (d *rawDriver) drop(worker int, c *rawConn) {
	c.nc.Close()
	d.mu.Lock()
	if d.conns[worker] == c {
		d.conns[worker] = nil
	}
	d.mu.Unlock()
}

// do sends the request on the worker's connection. A kept-alive
// connection that the server closed while it was idle (its idle timeout)
// fails before any byte of an answer comes back: then, and only then, the
// request goes again once on a new connection, as net/http does.
func (d *rawDriver) do(ctx context.Context, worker int, method, path string, body []byte, wantBody bool) (int, []byte, error) {
	for {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		c, reused, err := d.conn(ctx, worker)
		if err != nil {
			return 0, nil, err
		}
		status, b, keep, answered, err := d.roundTrip(c, method, path, body, wantBody)
		if err != nil || !keep {
			d.drop(worker, c)
		}
		if err != nil && reused && !answered {
			continue // the next connection is a new one
		}
		return status, b, err
	}
}

// roundTrip writes the request and reads the answer. answered says whether
// any byte of an answer arrived.
func (d *rawDriver) roundTrip(c *rawConn, method, path string, body []byte, wantBody bool) (status int, respBody []byte, keep, answered bool, err error) {
	r := c.req[:0]
	r = append(r, method...)
	r = append(r, ' ')
	r = append(r, path...)
	r = append(r, " HTTP/1.1\r\nHost: "...)
	r = append(r, d.host...)
	r = append(r, "\r\nUser-Agent: careteam-bench\r\n"...)
	if d.auth != "" {
		r = append(r, "Authorization: "...)
		r = append(r, d.auth...)
		r = append(r, "\r\n"...)
	}
	if body != nil {
		r = append(r, "Content-Type: application/json\r\nContent-Length: "...)
		r = strconv.AppendInt(r, int64(len(body)), 10)
		r = append(r, "\r\n"...)
	}
	r = append(r, "\r\n"...)
	r = append(r, body...)
	c.req = r

	if err := c.nc.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		return 0, nil, false, false, err
	}
	if _, err := c.nc.Write(r); err != nil {
		return 0, nil, false, false, err
	}
	if _, err := c.br.Peek(1); err != nil {
		return 0, nil, false, false, err
	}
	var length int64
	var chunked bool
	for {
		status, length, chunked, keep, err = readHead(c.br)
		if err != nil {
			return 0, nil, false, true, err
		}
		// An interim answer (100 Continue, 103 Early Hints) has no body;
		// the final one follows.
		if status >= 200 || status == http.StatusSwitchingProtocols {
			break
		}
	}
	c.body = c.body[:0]
	switch {
	case method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified:
	case chunked:
		c.body, err = readChunked(c.br, c.body, wantBody)
	case length >= 0:
		c.body, err = readN(c.br, c.body, length, wantBody)
	default:
		// No length: the body runs to the end of the connection.
		keep = false
		var rest []byte
		rest, err = io.ReadAll(c.br)
		if wantBody {
			c.body = append(c.body, rest...)
		}
	}
	if err != nil {
		return 0, nil, false, true, err
	}
	if !wantBody {
		return status, nil, keep, true, nil
	}
	return status, c.body, keep, true, nil
}

var errMalformed = errors.New("raw driver: malformed response")

// readHead reads a response's status line and headers.
func readHead(br *bufio.Reader) (status int, length int64, chunked, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, 0, false, false, err
	}
	// "HTTP/1.1 201 Created\r\n": three digits, then a space or the end.
	if len(line) < 13 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		!isDigits(line[9:12]) || (line[12] != ' ' && line[12] != '\r' && line[12] != '\n') {
		return 0, 0, false, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, _ = strconv.Atoi(string(line[9:12]))
	keep = line[7] == '1' // HTTP/1.1 keeps the connection unless told
	length = -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, 0, false, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return status, length, chunked, keep, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, 0, false, false, fmt.Errorf("%w: header %q", errMalformed, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, err := strconv.ParseUint(string(value), 10, 63)
			if err != nil || (length >= 0 && int64(n) != length) {
				return 0, 0, false, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
			length = int64(n)
		case asciiEqualFold(name, "Transfer-Encoding"):
			// The last coding decides whether the body is chunked.
			codings := bytes.Split(value, []byte(","))
			chunked = asciiEqualFold(bytes.TrimSpace(codings[len(codings)-1]), "chunked")
		case asciiEqualFold(name, "Connection"):
			for _, option := range bytes.Split(value, []byte(",")) {
				if asciiEqualFold(bytes.TrimSpace(option), "close") {
					keep = false
				}
			}
		}
	}
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// readN reads n bytes of body, appending them to dst when keep is set.
func readN(br *bufio.Reader, dst []byte, n int64, keep bool) ([]byte, error) {
	if !keep {
		_, err := br.Discard(int(n))
		return dst, err
	}
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	_, err := io.ReadFull(br, dst[start:])
	return dst, err
}

// readChunked reads a chunked body and its trailers.
func readChunked(br *bufio.Reader, dst []byte, keep bool) ([]byte, error) {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return dst, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || n < 0 {
			return dst, fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			for { // trailers, then the empty line
				line, err := br.ReadSlice('\n')
				if err != nil {
					return dst, err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return dst, nil
				}
			}
		}
		if dst, err = readN(br, dst, n, keep); err != nil {
			return dst, err
		}
		crlf, err := br.Peek(2)
		if err != nil {
			return dst, err
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return dst, fmt.Errorf("%w: chunk not followed by CRLF", errMalformed)
		}
		br.Discard(2)
	}
}
