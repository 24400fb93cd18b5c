package sandbox

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// ticketRows returns the status page's ticket rows: interval, last push, next push.
func ticketRows(t *testing.T, e *env) (interval, last, next string) {
	t.Helper()
	_, page := e.page(t, "/sandbox/", nil)
	cell := func(id string) string {
		m := regexp.MustCompile(`<td id="` + id + `">([^<]*)</td>`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("status page has no %s cell", id)
		}
		return m[1]
	}
	return cell("ticket-interval"), cell("ticket-last"), cell("ticket-next")
}

func TestStatusPageShowsTheTicketTimerInUse(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TicketInterval = 10 * time.Minute })
	e.rc.next(t) // the push right after Start
	waitFor(t, func() bool { _, last, _ := ticketRows(t, e); return strings.Contains(last, "成功 success") })
	interval, last, next := ticketRows(t, e)
	if interval != "10m" {
		t.Errorf("interval %q, want 10m", interval)
	}
	if want := e.clock.Now().Format(time.DateTime) + " (0 秒前 0 s ago) 成功 success"; last != want {
		t.Errorf("last push %q, want %q", last, want)
	}
	// The next push is the timer's: about 10 minutes from now on the sandbox clock.
	if !strings.Contains(next, e.clock.Now().Add(10*time.Minute).Format("2006-01-02 15:")) || !strings.Contains(next, "分钟后 in ") {
		t.Errorf("next push %q, want about 10 minutes after %s", next, e.clock.Now().Format(time.DateTime))
	}

	e.clock.Add(3 * time.Minute)
	if _, last, _ := ticketRows(t, e); !strings.Contains(last, "3 分钟前 3 min ago") {
		t.Errorf("last push 3 minutes later: %q", last)
	}
	e.rc.setAnswer(500, "busy")
	if _, err := e.sb.PushTicket(context.Background()); err == nil {
		t.Fatal("a refused push reported success")
	}
	e.rc.next(t)
	if _, last, _ := ticketRows(t, e); !strings.Contains(last, "失败 failed (HTTP 500)") {
		t.Errorf("last push after a refused one: %q", last)
	}
}

func TestStatusPageWithoutTicketTimer(t *testing.T) {
	e := newEnv(t)
	interval, last, next := ticketRows(t, e)
	if !strings.HasPrefix(interval, "关 off") || last != "尚无 none yet" || !strings.Contains(next, "no timer") {
		t.Fatalf("rows without a timer: %q, %q, %q", interval, last, next)
	}
	if _, err := e.sb.PushTicket(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.rc.next(t)
	if _, last, next := ticketRows(t, e); !strings.Contains(last, "成功 success") || !strings.Contains(next, "no timer") {
		t.Fatalf("rows after a manual push: %q, %q", last, next)
	}
}

// With ManualFirstTicket the timer waits for the embedder's first push, then pushes every interval.
func TestManualFirstTicketStartsTheTimer(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TicketInterval = 200 * time.Millisecond; c.ManualFirstTicket = true })
	time.Sleep(300 * time.Millisecond)
	if ev, ok := e.rc.pending(); ok {
		t.Fatalf("pushed before the first manual push: %v", ev.Fields)
	}
	if _, _, next := ticketRows(t, e); !strings.HasPrefix(next, "等待首次推送 waiting for the first push") {
		t.Fatalf("next push before the first: %q", next)
	}
	if _, err := e.sb.PushTicket(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.rc.next(t)
	if _, _, next := ticketRows(t, e); !strings.Contains(next, "秒后 in ") {
		t.Errorf("next push after the first: %q", next)
	}
	if ev := e.rc.next(t); ev.Fields["InfoType"] != InfoTicket { // the timer's
		t.Fatalf("timer push %v", ev.Fields)
	}
}
