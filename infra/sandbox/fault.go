package sandbox

import (
	"context"
	"math/rand/v2"
	"time"
)

// Fault describes trouble to inject into an API endpoint, applied before
// the endpoint's own logic in this order: Latency, DailyQuota, TimeoutRate,
// BusyFirst and BusyRate, ErrRate; and after it (WeChat has processed the call, the answer
// is late or lost): HoldAnswer, LoseAnswerRate. Faults apply to the JSON API
// endpoints only, not to the HTML pages or the /sandbox/ control paths.
type Fault struct {
	// Latency delays every call (cut short when the client gives up).
	Latency time.Duration
	// BusyRate is the probability of answering -1 "system error".
	BusyRate float64
	// BusyFirst > 0 answers -1 "system error" to the first BusyFirst calls
	// (counted from SetFault or ResetCalls, per endpoint); later calls pass.
	// It says "the first attempt fails" without depending on chance.
	BusyFirst int
	// TimeoutRate is the probability of holding the request for TimeoutHold
	// (default 30s) or until the client gives up, whichever comes first. A
	// held request that outlives the hold is then served normally, like a
	// very slow WeChat.
	TimeoutRate float64
	TimeoutHold time.Duration
	// ErrCode is answered with probability ErrRate (e.g. 45011 at 0.2).
	ErrCode int
	ErrRate float64
	// DailyQuota > 0 lets this many calls through (counted from SetFault or
	// ResetCalls, per endpoint); every later call answers 45009.
	DailyQuota int
	// LoseAnswerRate is the probability that a call is processed (codes are
	// spent, tokens issued) but its answer never comes: the request is held
	// until the client gives up, like an answer lost on the way back.
	LoseAnswerRate float64
	// HoldAnswer, when set, holds every processed call's answer until the
	// channel is closed (or the client gives up): WeChat has acted, the
	// caller does not know yet. Served tells when a call got that far.
	HoldAnswer chan struct{}
}

type faultState struct {
	Fault
	used map[string]int // calls per endpoint since SetFault or ResetCalls (DailyQuota, BusyFirst)
}

// SetFault injects f into endpoint (the last path element, e.g.
// "api_authorizer_token"); "" or "*" applies it to every API endpoint that
// has no fault of its own. A zero Fault removes the fault.
func (s *Sandbox) SetFault(endpoint string, f Fault) {
	if endpoint == "" {
		endpoint = "*"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (Fault{}) {
		delete(s.faults, endpoint)
		return
	}
	if f.TimeoutHold <= 0 {
		f.TimeoutHold = DefaultTimeoutHold
	}
	s.faults[endpoint] = &faultState{Fault: f, used: make(map[string]int)}
}

// applyFault runs the fault configured for endpoint. It returns a non-nil
// error answer to send instead of the endpoint's, or ok=false when the
// client went away or the sandbox closed and nothing should be written.
func (s *Sandbox) applyFault(ctx context.Context, endpoint string) (answer *apiError, ok bool) {
	s.mu.Lock()
	fs := s.faults[endpoint]
	if fs == nil {
		fs = s.faults["*"]
	}
	if fs == nil {
		s.mu.Unlock()
		return nil, true
	}
	f := fs.Fault
	fs.used[endpoint]++
	n := fs.used[endpoint]
	overQuota := f.DailyQuota > 0 && n > f.DailyQuota
	busyFirst := n <= f.BusyFirst
	s.mu.Unlock()

	if f.Latency > 0 && !s.wait(ctx, f.Latency) {
		return nil, false
	}
	if overQuota {
		return errCode(CodeDailyQuota), true
	}
	if chance(f.TimeoutRate) && !s.wait(ctx, f.TimeoutHold) {
		return nil, false
	}
	if busyFirst || chance(f.BusyRate) {
		return errCode(CodeSystemBusy), true
	}
	if f.ErrCode != 0 && chance(f.ErrRate) {
		return errCode(f.ErrCode), true
	}
	return nil, true
}

// afterFault runs the part of endpoint's fault that comes after WeChat has
// processed the call. false means the answer is lost: write nothing.
func (s *Sandbox) afterFault(ctx context.Context, endpoint string) bool {
	s.mu.Lock()
	fs := s.faults[endpoint]
	if fs == nil {
		fs = s.faults["*"]
	}
	s.mu.Unlock()
	if fs == nil {
		return true
	}
	if chance(fs.LoseAnswerRate) {
		s.wait(ctx, DefaultTimeoutHold*10) // until the client gives up or the sandbox closes
		return false
	}
	if fs.HoldAnswer != nil {
		select {
		case <-fs.HoldAnswer:
		case <-ctx.Done():
			return false
		case <-s.ctx.Done():
			return false
		}
	}
	return true
}

// wait sleeps for d; false means the request context ended or the sandbox
// closed first.
func (s *Sandbox) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}

func chance(p float64) bool { return p > 0 && (p >= 1 || rand.Float64() < p) }
