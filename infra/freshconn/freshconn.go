// Package freshconn lets the local servers (the WeChat sandbox, the dev stack's API) stop at once.
// http.Server.Shutdown waits up to five seconds for each connection that has not sent a request yet, and
// browsers and pooled clients open such connections ahead of time; a Tracker closes them on demand.
package freshconn

import (
	"net"
	"net/http"
	"sync"
)

// Tracker remembers the connections that have not sent a request yet. Use Track as http.Server.ConnState.
type Tracker struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Track records a connection's state change.
func (t *Tracker) Track(c net.Conn, state http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if state == http.StateNew {
		if t.conns == nil {
			t.conns = make(map[net.Conn]struct{})
		}
		t.conns[c] = struct{}{}
		return
	}
	delete(t.conns, c)
}

// CloseAll closes every connection that has not sent a request yet.
func (t *Tracker) CloseAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		_ = c.Close()
		delete(t.conns, c)
	}
}
