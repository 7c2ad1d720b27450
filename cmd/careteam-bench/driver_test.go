package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"} {
		br := newTestReader(head)
		if _, _, _, _, err := readHead(br); err == nil {
			t.Errorf("readHead(%q) accepted it", head)
		}
	}
}

func newTestReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
