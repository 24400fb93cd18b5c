package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wxtpp/platform/shared/campaigns"
)

// DefaultInterval is how often the live status display redraws.
const DefaultInterval = 2 * time.Second

const (
	errmsgWidth = 80 // ERRMSG is cut to this many columns in the table
	liveRows    = 15 // waiting reasons and failed apps shown in the live display, which must fit a screen
	barWidth    = 40
)

// campaignStatus shows a campaign's progress: once, or redrawn until it settles on a terminal.
func (c *CLI) campaignStatus(ctx context.Context, args []string) error {
	fs, s := c.flags("campaign status")
	once := fs.Bool("once", false, "")
	pos, err := parse(fs, args)
	if err != nil {
		return usagef("campaign status: %v", err)
	}
	if len(pos) != 1 {
		return usagef("campaign status: want exactly one campaign id, got %d", len(pos))
	}
	t, err := s.openTable(ctx)
	if err != nil {
		return err
	}
	store := &campaigns.Store{T: t}
	snap, err := c.snapshot(ctx, s, store, pos[0])
	if err != nil {
		return err
	}
	if s.json {
		return c.print(s, snap.view(), "")
	}
	if *once || !c.terminal() || snap.settled() {
		_, err := io.WriteString(c.Stdout, snap.render(0))
		return err
	}
	interval := c.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	// Home, each line cleared to its end, the rest of the screen cleared: a redraw without flicker.
	_, _ = io.WriteString(c.Stdout, "\x1b[H\x1b[2J")
	var stale error // the last refresh failed: the display keeps the previous reading and tries again
	for {
		frame := snap.render(liveRows)
		switch {
		case snap.settled():
			frame += "Every app is released, failed, blocked, or waiting for `wxtpp campaign release`.\n"
		case stale != nil:
			frame += fmt.Sprintf("Could not refresh at %s (%s); trying again. Ctrl-C stops watching.\n",
				c.Now().Format(time.TimeOnly), truncate(oneLine(stale.Error()), errmsgWidth))
		default:
			frame += fmt.Sprintf("Redrawn every %s; Ctrl-C stops watching (the campaign goes on).\n", interval)
		}
		if _, err := io.WriteString(c.Stdout, "\x1b[H"+strings.ReplaceAll(frame, "\n", "\x1b[K\n")+"\x1b[J"); err != nil {
			return err
		}
		if snap.settled() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil // the operator stopped watching
		case <-time.After(interval):
		}
		next, err := c.snapshot(ctx, s, store, pos[0])
		if ctx.Err() != nil {
			return nil
		}
		if stale = err; err == nil {
			snap = next
		}
	}
}

func (c *CLI) terminal() bool {
	if c.IsTerminal != nil {
		return c.IsTerminal()
	}
	if c.Stdout != io.Writer(os.Stdout) {
		return false
	}
	fi, err := os.Stdout.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	// /dev/null is a character device too: a redirect there must not redraw forever.
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// snapshot is one reading of a campaign: its record, its apps (counted live, not the sweeper's Counts),
// and the audit quota estimate.
type snapshot struct {
	c     campaigns.Campaign
	apps  []campaigns.App
	quota campaigns.Quota
	at    time.Time
}

func (c *CLI) snapshot(ctx context.Context, s *settings, store *campaigns.Store, id string) (snapshot, error) {
	camp, err := s.campaign(ctx, store, id)
	if err != nil {
		return snapshot{}, err
	}
	apps, err := store.Apps(ctx, id)
	if err != nil {
		return snapshot{}, s.inTable(err)
	}
	q, err := store.AuditQuota(ctx)
	if err != nil {
		return snapshot{}, s.inTable(err)
	}
	return snapshot{c: camp, apps: apps, quota: q, at: c.Now()}, nil
}

// awaitingRelease is an app the pipeline is done with until the operator releases it.
func awaitingRelease(state string) bool {
	return state == campaigns.StateApproved || state == campaigns.StateGray
}

// settled: nothing more happens without the operator.
func (p snapshot) settled() bool {
	switch p.c.State {
	case campaigns.CampaignRejected, campaigns.CampaignFinished:
		return true
	case campaigns.CampaignFanningOut:
		return false
	}
	if len(p.apps) < p.c.Total {
		return false
	}
	for _, a := range p.apps {
		if !campaigns.Final(a.State) && !awaitingRelease(a.State) {
			return false
		}
	}
	return true
}

// waiting groups the apps still under way by what they wait for (their Note).
func (p snapshot) waiting() map[string]int {
	w := map[string]int{}
	for _, a := range p.apps {
		if a.Note != "" && !campaigns.Final(a.State) && !awaitingRelease(a.State) {
			w[a.Note]++
		}
	}
	return w
}

func (p snapshot) failed() []campaigns.App {
	var out []campaigns.App
	for _, a := range p.apps {
		if a.State == campaigns.StateFailed || a.State == campaigns.StateBlocked {
			out = append(out, a)
		}
	}
	return out
}

// counted lists the states with apps: the pipeline's order, then any state this CLI does not know.
func counted(counts map[string]int) []string {
	var out []string
	for _, st := range campaigns.States {
		if counts[st] > 0 {
			out = append(out, st)
		}
	}
	var other []string
	for st, n := range counts {
		if n > 0 && !slices.Contains(campaigns.States, st) {
			other = append(other, st)
		}
	}
	slices.Sort(other)
	return append(out, other...)
}

// render is the text display; maxRows > 0 limits the lines of the waiting list and the failed table (the
// live display must fit a screen).
func (p snapshot) render(maxRows int) string {
	var b strings.Builder
	c := p.c
	fmt.Fprintf(&b, "Campaign %s: %s\n", c.ID, c.State)
	if c.State == campaigns.CampaignRejected {
		fmt.Fprintf(&b, "  reason:     %s\n", c.Reason)
		fmt.Fprintf(&b, "  recorded:   %s\n", stamp(c.CreatedAt))
		b.WriteString("Nothing was committed. Fix the job and start it under a new campaign_id.\n")
		return b.String()
	}
	if spec, err := c.Spec(); err == nil {
		mode := spec.Release.Mode
		if mode == "" {
			mode = campaigns.ModeAuto
		}
		if mode == campaigns.ModeGray {
			mode = fmt.Sprintf("gray %d%%", spec.Release.GrayPercentage)
		}
		fmt.Fprintf(&b, "  template:   %d, version %s, release %s\n", spec.TemplateID, spec.UserVersion, mode)
	}
	fmt.Fprintf(&b, "  targets:    %d, fanned out %d\n", c.Total, c.FannedOut)
	fmt.Fprintf(&b, "  started:    %s\n", stamp(c.CreatedAt))
	if c.DoneAt != 0 {
		fmt.Fprintf(&b, "  finished:   %s\n", stamp(c.DoneAt))
	}

	counts := campaigns.Count(p.apps)
	var parts []string
	for _, st := range counted(counts) {
		parts = append(parts, fmt.Sprintf("%s %d", st, counts[st]))
	}
	parts = append(parts, fmt.Sprintf("total %d", len(p.apps)))
	fmt.Fprintf(&b, "Apps: %s\n", strings.Join(parts, "  "))

	done := counts[campaigns.StateReleased] + counts[campaigns.StateFailed] + counts[campaigns.StateBlocked]
	awaiting := counts[campaigns.StateApproved] + counts[campaigns.StateGray]
	b.WriteString(bar(done, awaiting, max(c.Total, len(p.apps))))
	b.WriteString("\n")

	if w := p.waiting(); len(w) > 0 {
		notes := make([]string, 0, len(w))
		for n := range w {
			notes = append(notes, n)
		}
		slices.SortFunc(notes, func(x, y string) int {
			if w[x] != w[y] {
				return w[y] - w[x]
			}
			return strings.Compare(x, y)
		})
		b.WriteString("Waiting:\n")
		for i, n := range notes {
			if maxRows > 0 && i == maxRows {
				fmt.Fprintf(&b, "  ... and %d more reasons (`wxtpp campaign status %s --once` lists them all)\n", len(notes)-i, c.ID)
				break
			}
			fmt.Fprintf(&b, "  %s: %s\n", plural(w[n], "app", "apps"), truncate(oneLine(n), 2*errmsgWidth))
		}
	}
	if awaiting > 0 {
		fmt.Fprintf(&b, "%s approved or gray-released: release fully with `wxtpp campaign release %s`\n", plural(awaiting, "app", "apps"), c.ID)
	}
	if failed := p.failed(); len(failed) > 0 {
		fmt.Fprintf(&b, "Failed or blocked (%d): resume with `wxtpp campaign retry %s`\n", len(failed), c.ID)
		rows := [][]string{{"APPID", "STATE", "STEP", "ERRCODE", "ERRMSG"}}
		shown := failed
		if maxRows > 0 && len(shown) > maxRows {
			shown = shown[:maxRows]
		}
		for _, a := range shown {
			rows = append(rows, []string{a.AppID, a.State, or(a.FailedStep, "-"), fmt.Sprint(a.ErrCode), truncate(oneLine(a.ErrMsg), errmsgWidth)})
		}
		writeTable(&b, "  ", rows)
		if len(shown) < len(failed) {
			fmt.Fprintf(&b, "  ... and %d more (`wxtpp campaign status %s --once` lists them all)\n", len(failed)-len(shown), c.ID)
		}
	}
	b.WriteString(p.quotaLine())
	return b.String()
}

func (p snapshot) quotaLine() string {
	q := p.quota
	if q.CheckedAt == 0 {
		return "Audit quota: not asked yet (queryquota is asked at the first submission)\n"
	}
	at := time.UnixMilli(q.CheckedAt)
	age := max(p.at.Sub(at).Truncate(time.Second), 0) // the functions' clocks may run a little ahead
	return fmt.Sprintf("Audit quota: about %d of %d left this month (estimate from %s, %s ago)\n",
		q.Rest, q.Limit, at.UTC().Format(time.RFC3339), age)
}

// bar is the progress bar: # done (released, failed, blocked), = waiting for the operator's release.
func bar(done, awaiting, total int) string {
	if total <= 0 {
		return "[" + strings.Repeat(".", barWidth) + "] no apps"
	}
	d := done * barWidth / total
	a := (done+awaiting)*barWidth/total - d
	s := fmt.Sprintf("[%s%s%s] %d/%d done (%d%%)", strings.Repeat("#", d), strings.Repeat("=", a),
		strings.Repeat(".", barWidth-d-a), done, total, done*100/total)
	if awaiting > 0 {
		s += fmt.Sprintf(", %d waiting for release", awaiting)
	}
	return s
}

func stamp(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// statusView is `campaign status --json`.
type statusView struct {
	Campaign   campaignView   `json:"campaign"`
	Counts     map[string]int `json:"counts"` // every state, and total
	AppsFailed []failedView   `json:"apps_failed"`
	Waiting    map[string]int `json:"waiting"` // note -> apps
	AuditQuota quotaView      `json:"audit_quota"`
}

type campaignView struct {
	ID        string          `json:"campaign_id"`
	State     string          `json:"state"`
	Reason    string          `json:"reason,omitempty"`
	Spec      json.RawMessage `json:"spec,omitempty"` // the job without its targets
	Total     int             `json:"total"`
	FannedOut int             `json:"fanned_out"`
	Settled   bool            `json:"settled"` // nothing more happens without the operator
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at,omitempty"`
	DoneAt    string          `json:"done_at,omitempty"`
}

type failedView struct {
	AppID      string `json:"appid"`
	Tenant     string `json:"tenant,omitempty"`
	State      string `json:"state"`
	FailedStep string `json:"failed_step"`
	ErrCode    int    `json:"errcode"`
	ErrMsg     string `json:"errmsg"`
	UpdatedAt  string `json:"updated_at"`
}

type quotaView struct {
	Rest      int    `json:"rest"`
	Limit     int    `json:"limit"`
	CheckedAt string `json:"checked_at,omitempty"` // absent: never asked
}

func (p snapshot) view() statusView {
	c := p.c
	v := statusView{
		Campaign: campaignView{ID: c.ID, State: c.State, Reason: c.Reason, Total: c.Total, FannedOut: c.FannedOut,
			Settled: p.settled(), CreatedAt: stamp(c.CreatedAt)},
		Counts: map[string]int{}, AppsFailed: []failedView{}, Waiting: p.waiting(),
		AuditQuota: quotaView{Rest: p.quota.Rest, Limit: p.quota.Limit},
	}
	if json.Valid([]byte(c.SpecJSON)) {
		v.Campaign.Spec = json.RawMessage(c.SpecJSON)
	}
	if c.UpdatedAt != 0 {
		v.Campaign.UpdatedAt = stamp(c.UpdatedAt)
	}
	if c.DoneAt != 0 {
		v.Campaign.DoneAt = stamp(c.DoneAt)
	}
	counts := campaigns.Count(p.apps)
	for _, st := range campaigns.States {
		v.Counts[st] = counts[st]
	}
	for _, st := range counted(counts) {
		v.Counts[st] = counts[st]
	}
	v.Counts["total"] = len(p.apps)
	for _, a := range p.failed() {
		v.AppsFailed = append(v.AppsFailed, failedView{AppID: a.AppID, Tenant: a.Tenant, State: a.State, FailedStep: a.FailedStep,
			ErrCode: a.ErrCode, ErrMsg: a.ErrMsg, UpdatedAt: stamp(a.UpdatedAt)})
	}
	if p.quota.CheckedAt != 0 {
		v.AuditQuota.CheckedAt = stamp(p.quota.CheckedAt)
	}
	return v
}
