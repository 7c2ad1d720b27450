package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRawDriverReadsWhatTheServerSends drives a loopback net/http server
// with the raw driver: bodies with a length, chunked bodies, empty 204s
// and a server that closes the connection, on one worker's connection
// reused in turn, and checks every status and body it reads.
func TestRawDriverReadsWhatTheServerSends(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer k1" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/length":
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, r.Method+":"+string(body))
		case "/chunked":
			w.WriteHeader(http.StatusConflict)
			for i := range 3 {
				io.WriteString(w, strings.Repeat(string(rune('a'+i)), 3000))
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}
	}))
	srv.Start()
	defer srv.Close()

	d, err := newRawDriver(srv.URL, "k1", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	ctx := context.Background()

	check := func(method, path string, body []byte, wantStatus int, wantBody string) {
		t.Helper()
		status, got, err := d.do(ctx, 0, method, path, body, true)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		if status != wantStatus || string(got) != wantBody {
			t.Fatalf("%s %s: got %d %.40q, want %d %.40q", method, path, status, got, wantStatus, wantBody)
		}
	}
	for range 2 {
		check(http.MethodPost, "/length", []byte(`{"x":1}`), 201, `POST:{"x":1}`)
		check(http.MethodGet, "/chunked", nil, 409, strings.Repeat("a", 3000)+strings.Repeat("b", 3000)+strings.Repeat("c", 3000))
		check(http.MethodDelete, "/empty", nil, 204, "")
		check(http.MethodGet, "/close", nil, 200, "bye")
		if d.conns[0] != nil {
			t.Fatal("the driver kept a connection the server closed")
		}
	}

	// Without wantBody the body is read and dropped, and the connection
	// stays usable.
	status, body, err := d.do(ctx, 0, http.MethodGet, "/chunked", nil, false)
	if err != nil || status != 409 || body != nil {
		t.Fatalf("got %d %q %v, want 409 and no body", status, body, err)
	}
	check(http.MethodPost, "/length", []byte("2"), 201, "POST:2")

	other, err := newRawDriver(srv.URL, "wrong", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer other.close()
	if status, _, err := other.do(ctx, 0, http.MethodGet, "/length", nil, false); err != nil || status != 401 {
		t.Fatalf("wrong key: got %d %v, want 401", status, err)
	}
}

func TestRawDriverRefusesWhatIsNotHTTP(t *testing.T) {
	for _, head := range []string{"SSH-2.0-x\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 -20 OK\r\n\r\n", "HTTP/1.1 20\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"} {
		br := newTestReader(head)
		if _, _, _, _, err := readHead(br); err == nil {
			t.Errorf("readHead(%q) accepted it", head)
		}
	}
}

func newTestReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// TestRawDriverRetriesAConnectionTheServerClosedWhileIdle lets the
// server's idle timeout close the kept-alive connection between two
// requests: the second goes again on a new connection instead of failing.
func TestRawDriverRetriesAConnectionTheServerClosedWhileIdle(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.IdleTimeout = 20 * time.Millisecond
	closed := make(chan struct{}, 8)
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	defer srv.Close()
	d, err := newRawDriver(srv.URL, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	for i := range 3 {
		status, body, err := d.do(context.Background(), 0, http.MethodGet, "/", nil, true)
		if err != nil || status != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q %v", i, status, body, err)
		}
		// Go on once the server has closed the idle connection.
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("the server did not close the idle connection")
		}
	}
}

// TestRawDriverReadsUnusualAnswers serves answers byte for byte from a
// loopback listener: an interim 100 before the answer, a chunked body
// after another coding, "close" among other Connection options, and a
// chunk without its CRLF.
func TestRawDriverReadsUnusualAnswers(t *testing.T) {
	answers := []string{
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nhi",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for _, a := range answers {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			for { // the request's head
				line, err := br.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
			io.WriteString(c, a)
			if !strings.Contains(a, "Content-Length: 2") { // the first stays open for a second request
				c.Close()
			} else {
				defer c.Close()
			}
		}
	}()

	d, err := newRawDriver("http://"+ln.Addr().String(), "", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	get := func() (int, string, error) {
		status, body, err := d.do(context.Background(), 0, http.MethodGet, "/", nil, true)
		return status, string(body), err
	}
	if status, body, err := get(); err != nil || status != 201 || body != "hi" {
		t.Fatalf("after a 100: %d %q %v, want 201 hi", status, body, err)
	}
	d.drop(0, d.conns[0])
	if status, body, err := get(); err != nil || status != 200 || body != "abc" {
		t.Fatalf("gzip, chunked: %d %q %v, want 200 abc", status, body, err)
	}
	d.close()
	if status, body, err := get(); err != nil || status != 200 || body != "x" || d.conns[0] != nil {
		t.Fatalf("Connection: keep-alive, close: %d %q %v (kept: %v), want 200 x and the connection dropped",
			status, body, err, d.conns[0] != nil)
	}
	if _, _, err := get(); !errors.Is(err, errMalformed) {
		t.Fatalf("a chunk without its CRLF: err = %v, want errMalformed", err)
	}
}
