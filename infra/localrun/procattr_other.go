//go:build unix && !linux

package localrun

import (
	"syscall"
	"time"
)

// procAttr puts each function process in its own process group, so Close can
// signal it with every descendant.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// waitGroupGone is best effort here: without /proc, zombies cannot be told
// from running members, so it only waits for the group to be empty.
func waitGroupGone(pgid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for syscall.Kill(-pgid, 0) != syscall.ESRCH && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}
