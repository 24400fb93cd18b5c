package localrun

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// function is one served Lambda function. All mutable state is guarded by mu.
type function struct {
	r      *Runner
	cfg    Function
	region string
	arn    string
	srv    *http.Server
	insts  []*instance
	byPort map[int]*instance // listener port -> instance; fixed after listen

	mu          sync.Mutex
	closed      bool
	queue       []*invocation          // waiting for an instance, FIFO
	pollers     []*poller              // /next requests waiting for an invocation
	invs        map[string]*invocation // every unfinished invocation by request id
	invocations int
	restarts    int
	coldStarts  []time.Duration
}

// instance is one concurrency slot: a listener and the process behind it.
type instance struct {
	fn   *function
	idx  int
	addr string // host:port of this instance's Runtime API listener

	// guarded by fn.mu
	gen      int         // generation of the newest process
	proc     *process    // current process, nil while none is running
	inflight *invocation // invocation handed to proc, if any
}

type invState int

const (
	invQueued invState = iota
	invRunning
	invDone
)

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	timer    *time.Timer
	result   chan invResult // buffered: finish never blocks

	// guarded by fn.mu
	state invState
	inst  *instance
	gen   int // process generation running it
}

type invResult struct {
	payload []byte
	err     error
}

// poller is a /next request from one process, waiting for an invocation.
type poller struct {
	inst *instance
	gen  int
	ch   chan *invocation // buffered 1: dispatch never blocks
}

// submit queues a new invocation (or hands it straight to a waiting
// process) and arms its deadline.
func (f *function) submit(payload []byte) (*invocation, error) {
	inv := &invocation{
		id:       newInvocationID(),
		payload:  payload,
		deadline: time.Now().Add(f.cfg.Timeout),
		result:   make(chan invResult, 1),
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	f.invs[inv.id] = inv
	f.invocations++
	inv.timer = time.AfterFunc(f.cfg.Timeout, func() { f.expire(inv) })
	f.dispatchLocked(inv, false)
	return inv, nil
}

// dispatchLocked gives inv to the first live waiting process, or queues it
// (at the front when it is being handed back).
func (f *function) dispatchLocked(inv *invocation, front bool) {
	for len(f.pollers) > 0 {
		p := f.pollers[0]
		f.pollers = f.pollers[1:]
		if !p.usableLocked() {
			continue // its process died or was killed; its handler cleans up
		}
		f.assignLocked(inv, p.inst, p.gen)
		p.ch <- inv
		return
	}
	inv.state = invQueued
	if front {
		f.queue = slices.Insert(f.queue, 0, inv)
	} else {
		f.queue = append(f.queue, inv)
	}
}

func (p *poller) usableLocked() bool {
	proc := p.inst.proc
	return proc != nil && proc.gen == p.gen && !proc.killed && p.inst.inflight == nil
}

func (f *function) assignLocked(inv *invocation, inst *instance, gen int) {
	inv.state = invRunning
	inv.inst = inst
	inv.gen = gen
	inst.inflight = inv
}

// requeueLocked hands back an invocation whose /next response could not be
// delivered.
func (f *function) requeueLocked(inv *invocation) {
	if inv.state != invRunning {
		return
	}
	if inv.inst != nil && inv.inst.inflight == inv {
		inv.inst.inflight = nil
	}
	inv.inst = nil
	f.dispatchLocked(inv, true)
}

// finishLocked completes inv once; later results are ignored.
func (f *function) finishLocked(inv *invocation, res invResult) bool {
	if inv.state == invDone {
		return false
	}
	if inv.state == invQueued {
		if i := slices.Index(f.queue, inv); i >= 0 {
			f.queue = slices.Delete(f.queue, i, i+1)
		}
	}
	if inv.inst != nil && inv.inst.inflight == inv {
		inv.inst.inflight = nil
	}
	inv.state = invDone
	delete(f.invs, inv.id)
	if inv.timer != nil {
		inv.timer.Stop()
	}
	inv.result <- res
	return true
}

// expire enforces the deadline: a queued invocation is dropped; a running
// one fails and its process is killed (and restarted), as Lambda does.
func (f *function) expire(inv *invocation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch inv.state {
	case invQueued:
		f.finishLocked(inv, invResult{err: &FunctionError{
			Function: f.cfg.Name, RequestID: inv.id, Type: ErrorTypeTimeout,
			Message: fmt.Sprintf("Task timed out after %.2f seconds (queued: all %d instances busy)", f.cfg.Timeout.Seconds(), len(f.insts)),
		}})
	case invRunning:
		inst, gen := inv.inst, inv.gen
		f.finishLocked(inv, invResult{err: &FunctionError{
			Function: f.cfg.Name, RequestID: inv.id, Type: ErrorTypeTimeout,
			Message: fmt.Sprintf("Task timed out after %.2f seconds", f.cfg.Timeout.Seconds()),
		}})
		if p := inst.proc; p != nil && p.gen == gen {
			p.killLocked()
			f.r.log.Warn("invocation timed out; killing process", "function", f.cfg.Name,
				"requestId", inv.id, "instance", inst.idx, "pid", p.pid)
		}
	}
}

// abandon drops a still queued invocation whose caller went away (err is
// the caller's context error). A running one is left to finish: Lambda does
// not stop it either.
func (f *function) abandon(inv *invocation, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if inv.state == invQueued {
		f.finishLocked(inv, invResult{err: err})
	}
}

// shutdown fails every unfinished invocation and asks every process to stop.
func (f *function) shutdown() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, inv := range f.invs {
		f.finishLocked(inv, invResult{err: ErrClosed})
	}
	for _, inst := range f.insts {
		if p := inst.proc; p != nil {
			p.terminateLocked()
		}
	}
}

// killAll sends SIGKILL to every live process group.
func (f *function) killAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, inst := range f.insts {
		if p := inst.proc; p != nil {
			p.killLocked()
		}
	}
}
