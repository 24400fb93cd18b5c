package localrun

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// procAttr puts each function process in its own process group (so Close can
// signal it with every descendant) and has the kernel kill it if the runner
// itself dies, so no bootstrap outlives `make dev`.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// waitGroupGone waits, up to timeout, until process group pgid (already sent
// SIGKILL) has no member that is still running. Zombies count as gone: their
// reaping is up to their parent.
func waitGroupGone(pgid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		if syscall.Kill(-pgid, 0) == syscall.ESRCH || !groupHasLiveMember(pgid) {
			return
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// groupHasLiveMember scans /proc for a non-zombie process in group pgid.
func groupHasLiveMember(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	want := []byte(strconv.Itoa(pgid))
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%s/stat", e.Name()))
		if err != nil {
			continue
		}
		// Fields after "(comm)": state ppid pgrp ...
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 3 || f[0][0] == 'Z' || f[0][0] == 'X' {
			continue
		}
		if bytes.Equal(f[2], want) {
			return true
		}
	}
	return false
}
