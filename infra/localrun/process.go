package localrun

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// restart backoff for processes that die before becoming ready, so a
	// function that cannot start does not spin.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
	// outputDrain bounds the wait for a dead process's output pipes to close
	// (a descendant that escaped the process group could hold them open).
	outputDrain = time.Second
	// maxLine splits pathological long output lines.
	maxLine   = 64 << 10
	tailLines = 8
)

// process is one started bootstrap process.
type process struct {
	inst    *instance
	cmd     *exec.Cmd
	gen     int
	started time.Time
	ready   chan struct{} // closed at the first /next poll
	exited  chan struct{} // closed once the process has been reaped
	output  sync.WaitGroup
	pipes   []*os.File
	tail    *tail

	// guarded by inst.fn.mu
	pid       int
	isReady   bool
	killed    bool // SIGKILL sent: no new invocations
	initErr   *FunctionError
	exitErr   error
	exitState *os.ProcessState
}

// environ builds the process environment: the runner's own, then the
// variables Lambda sets, then Function.Env, and last the Runtime API address
// (which must not be overridden).
func (inst *instance) environ() []string {
	f := inst.fn
	env := make([]string, 0, len(os.Environ())+len(f.cfg.Env)+16)
	for _, kv := range os.Environ() {
		// Concurrency is modelled by Instances: one invocation per process.
		if !strings.HasPrefix(kv, "AWS_LAMBDA_MAX_CONCURRENCY=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"AWS_LAMBDA_FUNCTION_NAME="+f.cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(f.cfg.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+f.cfg.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME=localrun/"+f.cfg.Name+"/"+strconv.Itoa(inst.idx),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"LAMBDA_TASK_ROOT="+filepath.Dir(f.cfg.Binary),
		"_HANDLER=bootstrap",
		"TZ=:UTC",
		"AWS_REGION="+f.region,
	)
	if os.Getenv("AWS_DEFAULT_REGION") == "" {
		env = append(env, "AWS_DEFAULT_REGION="+f.region)
	}
	env = append(env, f.cfg.Env...)
	return append(env, "AWS_LAMBDA_RUNTIME_API="+inst.addr)
}

// spawn starts a new process for inst and makes it the instance's current one.
func (inst *instance) spawn() (*process, error) {
	f := inst.fn
	name := f.cfg.Name
	cmd := exec.Command(f.cfg.Binary)
	cmd.Dir = filepath.Dir(f.cfg.Binary)
	cmd.Env = inst.environ()
	cmd.SysProcAttr = procAttr()

	// Own pipes rather than io.Writers: Wait then returns as soon as the
	// process exits, even if a descendant still holds the pipe.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("localrun: %s: stdout pipe: %w", name, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("localrun: %s: stderr pipe: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW

	p := &process{
		inst:   inst,
		cmd:    cmd,
		ready:  make(chan struct{}),
		exited: make(chan struct{}),
		pipes:  []*os.File{outR, errR},
		tail:   &tail{},
	}
	f.mu.Lock()
	inst.gen++
	p.gen = inst.gen
	inst.proc = p
	p.started = time.Now() // read by the first /next, which cannot come before Start
	f.mu.Unlock()

	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		f.mu.Lock()
		if inst.proc == p {
			inst.proc = nil
		}
		f.mu.Unlock()
		return nil, fmt.Errorf("localrun: start %s: %w", name, err)
	}

	prefix := "[" + name + "] "
	for _, r := range p.pipes {
		p.output.Add(1)
		go func() {
			defer p.output.Done()
			copyLines(r, prefix, f.r.logs, p.tail)
		}()
	}

	f.mu.Lock()
	p.pid = cmd.Process.Pid
	if f.closed {
		// Close ran while the process was starting and could not signal it.
		p.killLocked()
	}
	f.mu.Unlock()
	return p, nil
}

// supervise waits for p to exit, fails its in-flight invocation and starts
// a replacement, until the runner closes.
func (inst *instance) supervise(p *process) {
	defer inst.fn.r.supervisors.Done()
	f := inst.fn
	backoff := time.Duration(0)
	for {
		if p != nil {
			wasReady := p.wait()
			if !wasReady {
				backoff = min(max(2*backoff, minBackoff), maxBackoff)
			} else {
				backoff = 0
			}
		}
		select {
		case <-f.r.closing:
			return
		default:
		}
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-f.r.closing:
				t.Stop()
				return
			}
		}
		np, err := inst.spawn()
		if err != nil {
			f.r.log.Error("restart failed", "function", f.cfg.Name, "instance", inst.idx, "error", err)
			p = nil
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			continue
		}
		f.mu.Lock()
		f.restarts++
		f.mu.Unlock()
		p = np
	}
}

// wait reaps p, kills whatever is left of its process group, drains its
// output and fails the invocation it held. It reports whether p had become
// ready.
func (p *process) wait() bool {
	f := p.inst.fn
	err := p.cmd.Wait()
	// Descendants left in the group (the group id is the dead leader's pid).
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	waitGroupGone(p.cmd.Process.Pid, outputDrain)

	drained := make(chan struct{})
	go func() {
		p.output.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(outputDrain):
		for _, r := range p.pipes {
			r.Close() // unblocks the readers
		}
		<-drained
	}
	for _, r := range p.pipes {
		r.Close()
	}

	f.mu.Lock()
	p.exitErr = err
	p.exitState = p.cmd.ProcessState
	wasReady := p.isReady
	inst := p.inst
	if inst.proc == p {
		inst.proc = nil
	}
	if inv := inst.inflight; inv != nil && inv.gen == p.gen {
		f.finishLocked(inv, invResult{err: &FunctionError{
			Function: f.cfg.Name, RequestID: inv.id, Type: ErrorTypeExit,
			Message: fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", inv.id, exitDescription(err)),
		}})
	}
	closing := f.closed
	f.mu.Unlock()
	close(p.exited)

	if !closing {
		f.r.log.Warn("process exited; restarting", "function", f.cfg.Name, "instance", inst.idx,
			"pid", p.cmd.Process.Pid, "exit", exitDescription(err), "wasReady", wasReady)
	}
	return wasReady
}

func exitDescription(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	return err.Error()
}

// describeExit explains why p exited before becoming ready (for Start).
func (p *process) describeExit() error {
	f := p.inst.fn
	f.mu.Lock()
	initErr, exitErr := p.initErr, p.exitErr
	f.mu.Unlock()
	msg := fmt.Sprintf("localrun: %s instance %d exited before polling for an invocation (%s)",
		f.cfg.Name, p.inst.idx, exitDescription(exitErr))
	if initErr != nil {
		msg += fmt.Sprintf("; init error %s: %s", initErr.Type, initErr.Message)
	}
	if lines := p.tail.lines(); len(lines) > 0 {
		msg += "; last output:\n  " + strings.Join(lines, "\n  ")
	}
	return errors.New(msg)
}

// terminateLocked asks the process group to stop (SIGTERM).
func (p *process) terminateLocked() {
	if p.pid != 0 {
		_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	}
}

// killLocked kills the process group and stops handing it invocations.
func (p *process) killLocked() {
	p.killed = true
	if p.pid != 0 {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
}

// copyLines writes r to w line by line, each line prefixed, and keeps the
// last few lines in t.
func copyLines(r io.Reader, prefix string, w io.Writer, t *tail) {
	br := bufio.NewReaderSize(r, maxLine)
	var buf bytes.Buffer
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			text := strings.TrimRight(string(line), "\r\n")
			buf.Reset()
			buf.WriteString(prefix)
			buf.WriteString(text)
			buf.WriteByte('\n')
			_, _ = w.Write(buf.Bytes())
			t.add(text)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// tail keeps the last tailLines lines of a process's output.
type tail struct {
	mu sync.Mutex
	l  []string
}

func (t *tail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	t.l = append(t.l, s)
	if len(t.l) > tailLines {
		t.l = t.l[len(t.l)-tailLines:]
	}
}

func (t *tail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.l...)
}
