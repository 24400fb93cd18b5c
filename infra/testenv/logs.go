package testenv

import (
	"bytes"
	"sync"
)

// LogBuffer collects log output written from many goroutines (handlers, the sandbox, function processes),
// so a test can assert on it (for example that no secret appears).
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
