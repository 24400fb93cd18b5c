// Package messages is the message callback (消息与事件接收URL, POST /wechat/{appid}/callback): every message and
// event of every authorized account. A push is verified (msg_signature; the ciphertext's trailing appid is the
// component's), decrypted, parsed, de-duplicated across instances, and answered once:
//
//   - 全网发布's test cases, matched on content: TESTCOMPONENT_MSG_TYPE_TEXT gets the passive reply
//     TESTCOMPONENT_MSG_TYPE_TEXT_callback; QUERY_AUTH_CODE:<code> an empty answer and, once, the
//     customer-service text <code>_from_api; an event of a test account the reply <Event>from_callback.
//   - Audit and privacy events are recorded on the account's latest audit (shared/audits).
//   - Everything else goes to the account's tenant: POSTed, signed, to its webhook, whose answer may carry the
//     passive reply; a webhook that fails gets the delivery again through the job queue.
//
// Forged, malformed, oversized or DOCTYPE-carrying pushes get a 4xx and change nothing.
package messages

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxtpp/platform/shared/audits"
	"github.com/wxtpp/platform/shared/custommsg"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/metrics"
	"github.com/wxtpp/platform/shared/pushes"
	"github.com/wxtpp/platform/shared/relay"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/tenants"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
	"github.com/wxtpp/platform/shared/wxcrypt"
)

// DefaultMaxBody bounds a push body: WeChat's are a few KB.
const DefaultMaxBody = 64 << 10

// DefaultBudget is how long a push may take before it is answered: WeChat waits 5 s.
const DefaultBudget = 4500 * time.Millisecond

var appIDRE = regexp.MustCompile(`^wx[0-9A-Za-z]{16}$`)

// Exchanger completes the exchange of an authorization code for a known account (the authorization service,
// which also coordinates with the `authorized` push carrying the same code).
type Exchanger interface {
	Exchange(ctx context.Context, code, appID string) (tokenstore.Authorizer, error)
}

// Handler serves the message URL.
type Handler struct {
	Crypter        *wxcrypt.Crypter
	Store          *tokenstore.Store // accounts
	Tenants        *tenants.Store
	Audits         *audits.Store
	Relay          *relay.Client
	Queue          *jobs.Queue
	Exchanger      Exchanger
	CustomMessages *custommsg.Sender
	// OnAudit, if set, is told of every audit event recorded (the release pipeline continues the campaign
	// that submitted the audit). An error fails the push, so WeChat delivers it again.
	OnAudit func(ctx context.Context, appid string, l audits.Latest) error
	MaxBody int           // default DefaultMaxBody
	Budget  time.Duration // default DefaultBudget
	Logger  *slog.Logger
	Now     func() time.Time

	once    sync.Once
	markers markers
	cache   lookups
}

func (h *Handler) init() {
	h.once.Do(func() {
		h.markers = markers{t: h.Store.Table(), now: h.now}
		h.cache = lookups{ttl: 30 * time.Second, now: h.now, entries: map[string]cached{}}
	})
}

// Handle is the Lambda handler (API Gateway HTTP API, payload 2.0). Every answer's latency, and each 5xx,
// is a metric: WeChat gives up after 5 s, and retries a push that failed.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	began := time.Now()
	resp, err := h.handle(ctx, req)
	log := h.logger().With("request_id", req.RequestContext.RequestID)
	metrics.Milliseconds(log, map[string]float64{metrics.MessageCallbackLatency: max(float64(time.Since(began).Microseconds())/1000, 0.001)})
	if err != nil || resp.StatusCode >= 500 {
		metrics.Count(log, map[string]float64{metrics.MessageCallbackServerErrors: 1})
	}
	return resp, err
}

func (h *Handler) handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	h.init()
	start := h.now()
	log := h.logger().With("request_id", req.RequestContext.RequestID)
	ctx = logging.With(ctx, log)

	appid := req.PathParameters["appid"]
	if !appIDRE.MatchString(appid) {
		return reject(ctx, http.StatusNotFound, "not an appid in the path", nil), nil
	}
	log = log.With("authorizer_appid", appid)
	ctx = logging.With(ctx, log)
	push, rejected := pushes.Open(ctx, h.Crypter, req, h.maxBody())
	if rejected != nil {
		return *rejected, nil
	}
	if err := fresh(req.QueryStringParameters["timestamp"], start); err != nil {
		return reject(ctx, http.StatusBadRequest, "push too old or from the future", err), nil
	}
	plain, key, nonce := push.Plain, push.Key, push.Nonce
	msg, err := Parse(plain)
	if err != nil {
		return reject(ctx, http.StatusBadRequest, "decrypted push is not a message", err), nil
	}
	log = log.With("msg_type", msg.MsgType, "event", msg.Event)
	ctx = logging.With(ctx, log)
	metrics.Count(log, map[string]float64{metrics.MessagesReceived: 1})
	acct, known, err := h.account(ctx, appid)
	if err != nil {
		log.Error("account not read; WeChat will retry", "error", err.Error())
		return text(http.StatusInternalServerError, "error"), nil
	}
	if known && acct.Info.UserName != "" && msg.ToUserName != acct.Info.UserName {
		return reject(ctx, http.StatusForbidden, "push is for another account than the path names", fmt.Errorf("ToUserName is not %s's", appid)), nil
	}

	a, err := h.once_(ctx, appid, acct, known, msg, start)
	if err != nil {
		log.Error("push not processed; WeChat will retry", "error", err.Error())
		return text(http.StatusInternalServerError, "error"), nil
	}
	return h.respond(ctx, a, key, nonce), nil
}

// A push's signed timestamp may be this old (WeChat retries within seconds; a replay of a captured push is
// refused once its markers may be gone) or this far ahead (clock skew).
const (
	maxPushAge  = 20 * time.Minute
	maxPushSkew = 5 * time.Minute
)

func fresh(timestamp string, now time.Time) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q is not a number", timestamp)
	}
	at := time.Unix(ts, 0)
	if at.Before(now.Add(-maxPushAge)) || at.After(now.Add(maxPushSkew)) {
		return fmt.Errorf("timestamp %s is outside [-%s, +%s] of now", at.UTC().Format(time.RFC3339), maxPushAge, maxPushSkew)
	}
	return nil
}

// work is what a push needs done; it returns the answer every delivery of the push gets.
type work func(ctx context.Context) (answer, error)

// decision is what a push needs (one of the three is set).
type decision struct {
	answer *answer // answered from the push alone
	work   work    // side effects that must happen once: under a marker
	redo   work    // side effects a repeat may do again harmlessly (audit records): no marker
}

// plan decides what a push needs, from the push and the account alone:
//   - nothing but "success" (an account without a tenant or webhook): no marker, no write; a repeat
//     changes nothing either;
//   - an answer computed from the push (全网发布's replies): one conditional write of a done marker, so that
//     every delivery gets the same reply;
//   - an audit event: recorded (its record is keyed by the event, so a repeat writes the same) and handed
//     to the release pipeline (whose job reads the record), without a marker;
//   - work with side effects (a webhook delivery, a customer-service message): taken with a marker, done,
//     and marked done.
func (h *Handler) plan(ctx context.Context, appid string, acct tokenstore.Authorizer, known bool, msg Message, key string) (decision, error) {
	log := logging.From(ctx)
	// 全网发布's text cases come from WeChat's test accounts, which no tenant authorized: a tenant's account
	// relays the same text like any other (a fan may type anything).
	releaseCheck := !known || acct.Tenant == ""
	switch {
	case releaseCheck && msg.MsgType == "text" && msg.Content == releaseText:
		reply, err := textReply(msg.FromUserName, msg.ToUserName, h.now(), releaseText+"_callback")
		return decision{answer: &answer{reply: reply}}, err
	case releaseCheck && msg.MsgType == "text" && strings.HasPrefix(msg.Content, queryAuthPrefix):
		return decision{work: func(ctx context.Context) (answer, error) {
			return answer{empty: true}, h.queryAuthCode(ctx, appid, msg)
		}}, nil
	case msg.IsEvent() && audits.IsAuditEvent(msg.Event):
		return decision{redo: func(ctx context.Context) (answer, error) {
			l, recorded, err := h.Audits.Record(ctx, appid, auditEvent(msg))
			if err != nil || !recorded || h.OnAudit == nil {
				return answer{}, err
			}
			return answer{}, h.OnAudit(ctx, appid, l)
		}}, nil
	case msg.IsEvent() && isReleaseTestAccount(appid, msg.ToUserName):
		reply, err := textReply(msg.FromUserName, msg.ToUserName, h.now(), msg.Event+"from_callback")
		return decision{answer: &answer{reply: reply}}, err
	}
	success := decision{answer: &answer{}}
	if !known || acct.Tenant == "" {
		log.Info("push acknowledged: the account has no tenant", "known", known)
		return success, nil
	}
	t, err := h.tenant(ctx, acct.Tenant)
	if errors.Is(err, tenants.ErrNotFound) {
		log.Warn("push acknowledged: the account's tenant does not exist", "tenant", acct.Tenant)
		return success, nil
	}
	if err != nil {
		return decision{}, err
	}
	if t.Webhook == "" {
		log.Info("push acknowledged: the tenant has no webhook", "tenant", t.ID)
		return success, nil
	}
	return decision{work: func(ctx context.Context) (answer, error) { return h.relay(ctx, t, appid, acct.Kind, msg, key) }}, nil
}

// once_ answers msg, doing its work exactly once across deliveries and instances.
func (h *Handler) once_(ctx context.Context, appid string, acct tokenstore.Authorizer, known bool, msg Message, start time.Time) (answer, error) {
	log := logging.From(ctx)
	key := Key(appid, msg)
	d, err := h.plan(ctx, appid, acct, known, msg, key)
	if err != nil {
		return answer{}, err
	}
	if d.redo != nil {
		return d.redo(ctx)
	}
	pure, effect := d.answer, d.work
	k := markerKey(appid, key)
	switch {
	case pure != nil && pure.reply == nil && !pure.empty:
		return *pure, nil // "success", and nothing happened: nothing to remember
	case pure != nil:
		a, first, err := h.markers.putDone(ctx, k, *pure)
		if err != nil {
			return answer{}, err
		}
		if !first {
			log.Info("repeated push answered as the first")
		}
		return a, nil
	}
	deadline := start.Add(h.budget())
	until := deadline
	if d, ok := ctx.Deadline(); ok && d.After(until) {
		until = d // a holder keeps the marker while its invocation may still run
	}
	owner := newOwner()
	m, mine, err := h.markers.take(ctx, k, owner, until)
	if err != nil {
		return answer{}, err
	}
	for !mine {
		if m.State == stateDone {
			log.Info("repeated push answered as the first")
			return m.answer(), nil
		}
		// Another delivery of the same push is being processed: wait for its answer while WeChat waits. A
		// delivery that cannot get it fails, so that WeChat tries again rather than taking "success" for the
		// answer the first one may still give.
		if !h.now().Before(deadline) {
			return answer{}, errors.New("another delivery of this push is still being processed")
		}
		select {
		case <-ctx.Done():
			return answer{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if m, err = h.markers.get(ctx, k); errors.Is(err, table.ErrNotFound) {
			m, mine, err = h.markers.take(ctx, k, owner, until) // the holder failed and let it go
		} else if err == nil && m.State == stateProcessing && m.Until < h.now().UnixMilli() {
			m, mine, err = h.markers.take(ctx, k, owner, until) // the holder died; its lease lapsed
		}
		if err != nil {
			return answer{}, err
		}
	}
	return h.holding(ctx, k, owner, effect)
}

// holding does the work of the marker owner holds and stores its answer; on failure (a panic too) it lets the
// marker go, so WeChat's retry is processed afresh.
func (h *Handler) holding(ctx context.Context, k table.Key, owner string, effect work) (a answer, err error) {
	log := logging.From(ctx)
	finished := false
	defer func() {
		if finished {
			return
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if derr := h.markers.drop(wctx, k, owner); derr != nil {
			log.Warn("message marker not dropped; WeChat's retry waits for it to lapse", "error", derr.Error())
		}
	}()
	a, err = effect(ctx)
	if err != nil {
		return answer{}, err
	}
	finished = true
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if derr := h.markers.done(wctx, k, owner, a); derr != nil {
		log.Warn("answer not stored on the message marker", "error", derr.Error())
	}
	return a, nil
}

// relay delivers the push to the tenant's webhook. Its reply, if any, is the passive reply; a mini program
// cannot answer passively with a message, so its reply goes to the fan as a customer-service message.
func (h *Handler) relay(ctx context.Context, t tenants.Tenant, appid, kind string, msg Message, key string) (answer, error) {
	d := relay.Delivery{ID: "dlv_" + key, Tenant: t.ID, AppID: appid, Message: msg.Fields}
	log := logging.From(ctx).With("delivery_id", d.ID, "tenant", t.ID)
	res, err := h.Relay.Deliver(ctx, t.Webhook, t.SigningSecret, d)
	if err != nil {
		// Answered `success` now; the delivery goes on through the job queue.
		log.Warn("webhook did not take the delivery; retrying through the job queue", "error", err.Error())
		metrics.Count(log, map[string]float64{metrics.RelayFailures: 1})
		if qerr := h.Queue.Send(ctx, relay.NewJob(d), jobs.Backoff(h.retryBase(), 1)); qerr != nil {
			return answer{}, fmt.Errorf("relay retry not queued: %w", qerr)
		}
		return answer{}, nil
	}
	metrics.Count(log, map[string]float64{metrics.MessagesRelayed: 1})
	switch {
	case res.Problem != "":
		log.Warn("delivered; the webhook's reply cannot be sent", "problem", res.Problem)
		return answer{}, nil
	case res.Reply == nil:
		log.Info("delivered to the webhook")
		return answer{}, nil
	case kind == tokenstore.KindMiniProgram:
		return answer{}, h.replyAsCustomMessage(ctx, appid, msg, d.ID, *res.Reply)
	}
	plain, err := passiveReply(msg.FromUserName, msg.ToUserName, h.now(), *res.Reply)
	if err != nil {
		log.Warn("delivered; the webhook's reply cannot be sent", "problem", err.Error())
		return answer{}, nil
	}
	log.Info("delivered to the webhook; its reply is the passive reply", "reply_type", res.Reply.MsgType)
	return answer{reply: plain}, nil
}

// replyAsCustomMessage sends a mini program's webhook reply to the fan, once per delivery.
func (h *Handler) replyAsCustomMessage(ctx context.Context, appid string, msg Message, deliveryID string, reply wxapi.CustomMessage) error {
	log := logging.From(ctx)
	reply.ToUser = msg.FromUserName
	if err := reply.Validate(wxapi.KindMiniProgram); err != nil {
		log.Warn("delivered; the webhook's reply cannot be sent by a mini program", "problem", err.Error())
		return nil
	}
	job := custommsg.Job{Key: "reply:" + deliveryID, AppID: appid, Kind: wxapi.KindMiniProgram, Message: reply}
	err := h.CustomMessages.Send(ctx, job)
	switch {
	case custommsg.IsRefused(err):
		log.Warn("delivered; WeChat refused the reply as a customer-service message", "error", err.Error())
		return nil
	case err != nil:
		return fmt.Errorf("mini-program reply: %w", err)
	}
	log.Info("delivered to the webhook; its reply went to the fan as a customer-service message", "reply_type", reply.MsgType)
	return nil
}

func (h *Handler) retryBase() time.Duration {
	if h.CustomMessages != nil {
		return h.CustomMessages.RetryBase
	}
	return 0
}

// respond answers WeChat: the encrypted passive reply (with the key that decrypted the push, echoing its
// nonce), an empty body, or "success".
func (h *Handler) respond(ctx context.Context, a answer, key wxcrypt.Key, nonce string) events.APIGatewayV2HTTPResponse {
	switch {
	case a.reply != nil:
		out, err := h.Crypter.Reply(key, a.reply, strconv.FormatInt(h.now().Unix(), 10), nonce)
		if err != nil {
			logging.From(ctx).Error("passive reply not encrypted; answered success", "error", err.Error())
			return text(http.StatusOK, "success")
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK,
			Headers: map[string]string{"Content-Type": "application/xml; charset=utf-8"}, Body: string(out)}
	case a.empty:
		return text(http.StatusOK, "")
	}
	return text(http.StatusOK, "success")
}

func auditEvent(m Message) audits.Event {
	str := func(name string) string { s, _ := m.Fields[name].(string); return strings.TrimSpace(s) }
	num := func(name string) int64 { n, _ := strconv.ParseInt(str(name), 10, 64); return n }
	ev := audits.Event{Event: m.Event, CreateTime: m.CreateTime, Reason: str("Reason"), ScreenShot: str("ScreenShot")}
	switch m.Event {
	case audits.EventSuccess:
		ev.At = num("SuccTime")
	case audits.EventFail:
		ev.At = num("FailTime")
	case audits.EventDelay:
		ev.At = num("DelayTime")
	case audits.EventPrivacyApply:
		ev.Fields = flatten("", m.Fields, map[string]string{})
		for _, k := range []string{"ToUserName", "FromUserName", "CreateTime", "MsgType", "Event"} {
			delete(ev.Fields, k)
		}
	}
	return ev
}

// flatten turns nested fields into dotted names (result_info.status), for an event whose shape is not
// documented reliably.
func flatten(prefix string, v map[string]any, out map[string]string) map[string]string {
	for k, x := range v {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch x := x.(type) {
		case string:
			out[name] = strings.TrimSpace(x)
		case map[string]any:
			flatten(name, x, out)
		case []any:
			for i, e := range x {
				if m, ok := e.(map[string]any); ok {
					flatten(name+"."+strconv.Itoa(i), m, out)
				} else if s, ok := e.(string); ok {
					out[name+"."+strconv.Itoa(i)] = s
				}
			}
		}
	}
	return out
}

func reject(ctx context.Context, status int, msg string, err error) events.APIGatewayV2HTTPResponse {
	return *pushes.Reject(ctx, status, msg, err)
}

func text(status int, body string) events.APIGatewayV2HTTPResponse { return pushes.Text(status, body) }

func newOwner() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (h *Handler) maxBody() int {
	if h.MaxBody > 0 {
		return h.MaxBody
	}
	return DefaultMaxBody
}

func (h *Handler) budget() time.Duration {
	if h.Budget > 0 {
		return h.Budget
	}
	return DefaultBudget
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// account reads the path's account (cached briefly: its tenant and gh_ id rarely change).
func (h *Handler) account(ctx context.Context, appid string) (tokenstore.Authorizer, bool, error) {
	if v, ok := h.cache.get("a:" + appid); ok {
		a, known := v.(tokenstore.Authorizer), true
		return a, known && a.AppID != "", nil
	}
	a, err := h.Store.Authorizer(ctx, appid)
	if errors.Is(err, table.ErrNotFound) {
		// Not cached: a 全网发布 test account's authorization may be stored any moment now.
		return tokenstore.Authorizer{}, false, nil
	}
	if err != nil {
		return tokenstore.Authorizer{}, false, err
	}
	h.cache.put("a:"+appid, a)
	return a, true, nil
}

// tenant reads a tenant (cached briefly: a new webhook takes effect within the cache's 30 s).
func (h *Handler) tenant(ctx context.Context, id string) (tenants.Tenant, error) {
	if v, ok := h.cache.get("t:" + id); ok {
		return v.(tenants.Tenant), nil
	}
	t, err := h.Tenants.Get(ctx, id)
	if err != nil {
		return tenants.Tenant{}, err
	}
	h.cache.put("t:"+id, t)
	return t, nil
}

// lookups is a small time-bounded cache of records read on every push.
type lookups struct {
	mu      sync.Mutex
	ttl     time.Duration
	now     func() time.Time
	entries map[string]cached
}

type cached struct {
	v   any
	exp time.Time
}

// maxCached bounds the cache: beyond it, it starts afresh.
const maxCached = 10000

func (c *lookups) get(k string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.now().Before(e.exp) {
		return nil, false
	}
	return e.v, true
}

func (c *lookups) put(k string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCached {
		clear(c.entries)
	}
	c.entries[k] = cached{v: v, exp: c.now().Add(c.ttl)}
}

// wxapiKind maps a stored account's kind to the customer-service kinds.
func wxapiKind(kind string) string {
	if kind == tokenstore.KindMiniProgram {
		return wxapi.KindMiniProgram
	}
	return wxapi.KindOfficialAccount
}
