package sandbox

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"
)

// 全网发布 (full-network release): before a component goes live, WeChat
// authorizes one of its five dedicated test groups to it and checks how the
// component answers their pushes (addendum A.2; reference 4.2).

// ReleaseGroup is one 全网发布 test group: an official account and a mini
// program that WeChat authorizes to the component during the check.
type ReleaseGroup struct {
	OfficialAccount, MiniProgram Account
}

// releaseGroupIDs are the documented test accounts (addendum A.2 table):
// appid and original id of the official account, then of the mini program.
var releaseGroupIDs = [5][4]string{
	{"wx570bc396a51b8ff8", "gh_3c884a361561", "wxd101a85aa106f53e", "gh_8dad206e9538"},
	{"wx9252c5e0bb1836fc", "gh_c0f28a78b318", "wxc39235c15087f6f3", "gh_905ae9d01059"},
	{"wx8e1097c5bc82cde9", "gh_3f222ed8d140", "wx7720d01d4b2a4500", "gh_393666f1fdf4"},
	{"wx14550af28c71a144", "gh_26128078e9ab", "wx05d483572dcd5d8b", "gh_39abb5d4e1b7"},
	{"wxa35b9c23cfe664eb", "gh_2b3713f184a6", "wx5910277cae6fd970", "gh_7818dcb60240"},
}

// ReleaseTestGroups returns the five 全网发布 test groups, group 1 first.
// Every sandbox has these accounts besides Config.Accounts; they are not
// listed by Accounts or on the authorization pages, and only RunReleaseCheck
// authorizes them (the way the test accounts authorize themselves).
func ReleaseTestGroups() []ReleaseGroup {
	out := make([]ReleaseGroup, len(releaseGroupIDs))
	for i, ids := range releaseGroupIDs {
		n := i + 1
		out[i] = ReleaseGroup{
			OfficialAccount: Account{
				AppID: ids[0], Kind: KindOfficialAccount, UserName: ids[1],
				NickName: fmt.Sprintf("全网发布测试公众号 %d", n), PrincipalName: "微信开放平台全网发布测试",
				Signature: "第三方平台全网发布专用测试公众号。", ServiceType: 2, VerifyType: 0,
				FuncInfo: slices.Clone(defaultOfficialAccountFuncs),
			},
			MiniProgram: Account{
				AppID: ids[2], Kind: KindMiniProgram, UserName: ids[3],
				NickName: fmt.Sprintf("全网发布测试小程序 %d", n), PrincipalName: "微信开放平台全网发布测试",
				Signature: "第三方平台全网发布专用测试小程序。", ServiceType: 0, VerifyType: 0,
				FuncInfo:   slices.Clone(defaultMiniProgramFuncs),
				Categories: []Category{{First: "工具", Second: "效率", FirstID: 287, SecondID: 612}},
			},
		}
	}
	return out
}

func isReleaseTestAccount(appid string) bool {
	for _, ids := range releaseGroupIDs {
		if appid == ids[0] || appid == ids[2] {
			return true
		}
	}
	return false
}

// The fixed contents of the checks.
const (
	releaseText         = "TESTCOMPONENT_MSG_TYPE_TEXT"
	releaseTextReply    = "TESTCOMPONENT_MSG_TYPE_TEXT_callback"
	releaseQueryPrefix  = "QUERY_AUTH_CODE:"
	releaseAPISuffix    = "_from_api"
	releaseEventSuffix  = "from_callback"
	releaseCodeMask     = "$query_auth_code$" // stands for the code in step details
	releaseSettle       = 500 * time.Millisecond
	defaultReleaseWait  = 10 * time.Second
	releasePollInterval = 20 * time.Millisecond
)

// ReleaseCheckOptions tunes RunReleaseCheck.
type ReleaseCheckOptions struct {
	// Deliveries is how many times each message push is delivered (WeChat's
	// retries reach the component too). Default 1.
	Deliveries int
	// CustomMessageWait is how long to wait for each customer-service
	// message. Default 10s.
	CustomMessageWait time.Duration
}

// ReleaseReport is the outcome of a release check, step by step.
type ReleaseReport struct {
	Group int
	Steps []ReleaseStep
}

// ReleaseStep is one check of the release run.
type ReleaseStep struct {
	Name   string
	OK     bool
	Detail string // what was seen; never a code or a token
}

// Passed reports whether every step passed.
func (r ReleaseReport) Passed() bool {
	for _, st := range r.Steps {
		if !st.OK {
			return false
		}
	}
	return len(r.Steps) > 0
}

// RunReleaseCheck runs WeChat's 全网发布 check with test group (1-5):
//
//  1. push a component_verify_ticket to PushURL (must be answered success);
//  2. authorize the group's official account and mini program, pushing
//     `authorized` with a fresh auth code (the query_auth_code) and a
//     pre_auth_code of WeChat's own;
//  3. official account, text TESTCOMPONENT_MSG_TYPE_TEXT from a new fan: an
//     encrypted passive reply, text TESTCOMPONENT_MSG_TYPE_TEXT_callback,
//     from the account to the fan;
//  4. official account, text QUERY_AUTH_CODE:<its code>: an empty (or
//     success) answer, then exactly one customer-service text
//     <code>_from_api to that fan within CustomMessageWait;
//  5. official account, a LOCATION event: passive reply text
//     LOCATIONfrom_callback (the old documented case, kept as insurance);
//  6. mini program, text QUERY_AUTH_CODE:<its code>: as step 4;
//  7. push `unauthorized` for both accounts (the answer must be success).
//
// Each message is delivered opt.Deliveries times; every delivery must be
// answered correctly, and retries must not multiply the customer-service
// message. The error is for a check that cannot run (bad group, no
// PushURL or MessageURL) or was cut short (ctx, Close); the report then
// holds the steps run so far. Release checks run one at a time.
func (s *Sandbox) RunReleaseCheck(ctx context.Context, group int, opt ReleaseCheckOptions) (ReleaseReport, error) {
	groups := ReleaseTestGroups()
	switch {
	case group < 1 || group > len(groups):
		return ReleaseReport{}, fmt.Errorf("sandbox: release check: group %d does not exist (1-%d)", group, len(groups))
	case s.cfg.PushURL == "":
		return ReleaseReport{}, fmt.Errorf("release check: %w", ErrNoPushURL)
	case s.cfg.MessageURL == "":
		return ReleaseReport{}, fmt.Errorf("release check: %w", ErrNoMessageURL)
	}
	if opt.Deliveries < 1 {
		opt.Deliveries = 1
	}
	if opt.CustomMessageWait <= 0 {
		opt.CustomMessageWait = defaultReleaseWait
	}
	s.releaseMu.Lock()
	defer s.releaseMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()

	g := groups[group-1]
	oa, mp := g.OfficialAccount, g.MiniProgram
	run := &releaseRun{s: s, ctx: ctx, opt: opt, report: ReleaseReport{Group: group}}
	s.log.Info("release check started", "group", group)
	run.ticket()
	oaCode := run.authorize("授权 authorized 公众号 "+oa.AppID, oa)
	mpCode := run.authorize("授权 authorized 小程序 "+mp.AppID, mp)
	run.passiveText("公众号 返回普通文本 passive text reply", oa)
	run.apiText("公众号 返回API文本 customer-service reply", oa, oaCode)
	run.eventReply("公众号 事件 LOCATION event reply", oa)
	run.apiText("小程序 返回API文本 customer-service reply", mp, mpCode)
	run.recount()
	run.unauthorize("取消授权 unauthorized 公众号 "+oa.AppID, oa)
	run.unauthorize("取消授权 unauthorized 小程序 "+mp.AppID, mp)
	s.log.Info("release check finished", "group", group, "passed", run.report.Passed())
	if err := ctx.Err(); err != nil {
		if s.ctx.Err() != nil {
			err = ErrClosed
		}
		return run.report, fmt.Errorf("sandbox: release check cut short: %w", err)
	}
	return run.report, nil
}

// releaseRun carries one release check's state.
type releaseRun struct {
	s      *Sandbox
	ctx    context.Context
	opt    ReleaseCheckOptions
	report ReleaseReport
	// sent are the customer-service checks, recounted before revocation.
	sent []releaseSent
}

type releaseSent struct {
	step        int // index in report.Steps
	appid, fan  string
	code        string
	withinWait  bool // one message arrived within the wait
	answersFine bool // every delivery was answered with an empty body
}

func (r *releaseRun) add(name string, err error, detail string) int {
	st := ReleaseStep{Name: name, OK: err == nil, Detail: detail}
	if err != nil {
		st.Detail = err.Error()
	}
	r.report.Steps = append(r.report.Steps, st)
	return len(r.report.Steps) - 1
}

// Step 1.
func (r *releaseRun) ticket() {
	_, err := r.s.PushTicket(r.ctx)
	r.add("验证票据 component_verify_ticket", err, "answered success")
}

// Step 2: the test account authorizes itself. The pre_auth_code is one
// WeChat made up, unknown to the component.
func (r *releaseRun) authorize(name string, acct Account) (authCode string) {
	now := r.s.now()
	r.s.mu.Lock()
	infoType, authCode, expires := r.s.grantLocked(r.s.authorizers[acct.AppID], now)
	r.s.mu.Unlock()
	r.s.log.Info("release test account authorized", "authorizer_appid", acct.AppID, "info_type", infoType)
	err := r.s.push(r.ctx, infoType, acct.AppID, authFields(authCode, expires, newPreAuthCode())...)
	r.add(name, err, infoType+" answered success")
	return authCode
}

// times describes the number of deliveries per message.
func (r *releaseRun) times() string {
	if r.opt.Deliveries == 1 {
		return "1 delivery"
	}
	return fmt.Sprintf("each of %d deliveries", r.opt.Deliveries)
}

// textReply checks a passive reply: text content, from the account to the
// fan.
func textReply(res MessageResult, acct Account, fanID, content string) error {
	if res.NoReply {
		return errors.New("no passive reply (empty or success answer)")
	}
	f, err := plainFields(res.Reply)
	if err != nil {
		return fmt.Errorf("reply plaintext: %v", err)
	}
	switch {
	case f["MsgType"] != "text":
		return fmt.Errorf("reply MsgType %q, want text", f["MsgType"])
	case f["Content"] != content:
		return fmt.Errorf("reply Content %q, want %q", shorten(f["Content"]), content)
	case f["ToUserName"] != fanID:
		return fmt.Errorf("reply ToUserName %q, want the fan %q", f["ToUserName"], fanID)
	case f["FromUserName"] != acct.UserName:
		return fmt.Errorf("reply FromUserName %q, want the account %q", f["FromUserName"], acct.UserName)
	}
	return nil
}

// deliveries pushes plain opt.Deliveries times and checks each result.
func (r *releaseRun) deliveries(acct Account, plain []byte, check func(MessageResult) error) error {
	results, err := r.s.PushMessageTimes(r.ctx, acct.AppID, plain, r.opt.Deliveries)
	if err != nil {
		return err
	}
	for i, res := range results {
		if err := check(res); err != nil {
			return fmt.Errorf("delivery %d of %d: %w", i+1, len(results), err)
		}
	}
	return nil
}

// Step 3.
func (r *releaseRun) passiveText(name string, acct Account) {
	fanID := newOpenID()
	plain := TextMessage(acct.UserName, fanID, releaseText, newMsgID(), r.s.now())
	err := r.deliveries(acct, plain, func(res MessageResult) error {
		return textReply(res, acct, fanID, releaseTextReply)
	})
	r.add(name, err, fmt.Sprintf("passive reply %s (%s)", releaseTextReply, r.times()))
}

// Step 5.
func (r *releaseRun) eventReply(name string, acct Account) {
	fanID := newOpenID()
	want := "LOCATION" + releaseEventSuffix
	err := r.deliveries(acct, locationEvent(acct.UserName, fanID, r.s.now()), func(res MessageResult) error {
		return textReply(res, acct, fanID, want)
	})
	r.add(name, err, fmt.Sprintf("passive reply %s (%s)", want, r.times()))
}

// Steps 4 and 6: an empty answer within the push timeout, then one
// customer-service text <code>_from_api to the fan.
func (r *releaseRun) apiText(name string, acct Account, authCode string) {
	fanID := newOpenID()
	plain := TextMessage(acct.UserName, fanID, releaseQueryPrefix+authCode, newMsgID(), r.s.now())
	err := r.deliveries(acct, plain, func(res MessageResult) error {
		if !res.NoReply {
			return errors.New("answered with a passive reply; want an empty answer, then a customer-service message")
		}
		return nil
	})
	sent := releaseSent{appid: acct.AppID, fan: fanID, code: authCode, answersFine: err == nil}
	if err != nil {
		sent.step = r.add(name, err, "")
		r.sent = append(r.sent, sent)
		return
	}
	deadline := time.Now().Add(r.opt.CustomMessageWait)
	for r.count(sent) == 0 && time.Now().Before(deadline) {
		if !r.s.wait(r.ctx, releasePollInterval) {
			break
		}
	}
	if r.count(sent) > 0 {
		sent.withinWait = true
		// Give retries' duplicates a moment to show up.
		r.s.wait(r.ctx, min(releaseSettle, r.opt.CustomMessageWait))
	}
	sent.step = r.add(name, nil, "")
	r.sent = append(r.sent, sent)
	r.judge(sent, r.opt.CustomMessageWait)
}

// count is how many customer-service texts <code>_from_api reached the fan.
func (r *releaseRun) count(sent releaseSent) int {
	n := 0
	for _, m := range r.s.CustomMessages(sent.appid) {
		if m.ToUser == sent.fan && m.MsgType == "text" && m.Text == sent.code+releaseAPISuffix {
			n++
		}
	}
	return n
}

// judge sets a customer-service step's outcome from what reached the fan.
func (r *releaseRun) judge(sent releaseSent, wait time.Duration) {
	if !sent.answersFine {
		return
	}
	st := &r.report.Steps[sent.step]
	want := releaseCodeMask + releaseAPISuffix
	switch n := r.count(sent); {
	case n == 1 && sent.withinWait:
		st.OK, st.Detail = true, fmt.Sprintf("answered empty (%s); customer-service text %s sent once", r.times(), want)
	case n > 1:
		st.OK, st.Detail = false, fmt.Sprintf("customer-service text %s sent %d times; want once (de-duplicate the retries)", want, n)
	default:
		st.OK, st.Detail = false, fmt.Sprintf("no customer-service text %s reached the fan within %s%s", want, wait, r.others(sent))
	}
}

// others describes other customer-service messages to the fan, codes masked.
func (r *releaseRun) others(sent releaseSent) string {
	var got []string
	for _, m := range r.s.CustomMessages(sent.appid) {
		if m.ToUser != sent.fan {
			continue
		}
		desc := m.MsgType
		if m.MsgType == "text" {
			desc = fmt.Sprintf("text %q", shorten(strings.ReplaceAll(m.Text, sent.code, releaseCodeMask)))
		}
		got = append(got, desc)
	}
	if len(got) == 0 {
		return ""
	}
	return "; the fan got: " + strings.Join(got, ", ")
}

// recount judges the customer-service steps again just before revocation,
// so a duplicate sent late still counts.
func (r *releaseRun) recount() {
	for _, sent := range r.sent {
		r.judge(sent, r.opt.CustomMessageWait)
	}
}

// Step 7.
func (r *releaseRun) unauthorize(name string, acct Account) {
	err := r.s.Revoke(r.ctx, acct.AppID)
	r.add(name, err, "unauthorized answered success")
}

// newMsgID makes up a MsgId like WeChat's 64-bit message ids.
func newMsgID() int64 { return 24000000000000000 + mrand.Int64N(1e15) }
