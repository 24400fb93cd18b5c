package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wxtpp/platform/infra/freshconn"
	"github.com/wxtpp/platform/shared/wxcrypt"
)

// Defaults for the zero values of Config.
const (
	DefaultTokenTTL    = 2 * time.Hour
	DefaultTokenGrace  = 5 * time.Minute
	DefaultCodeTTL     = 10 * time.Minute
	DefaultTicketTTL   = 12 * time.Hour
	DefaultPushTimeout = 5 * time.Second
	DefaultTimeoutHold = 30 * time.Second
	DefaultAuditQuota  = 1000 // audits a month (queryquota limit)
	DefaultAuditDelay  = 2 * time.Second
)

// AuditImmediate as Config.AuditDelay decides every audit when submit_audit
// answers.
const AuditImmediate time.Duration = -1

// Config configures a Sandbox. ComponentAppID, ComponentSecret, Token and
// EncodingAESKey are required; everything else has a WeChat-like default.
type Config struct {
	ComponentAppID  string
	ComponentSecret string
	Token           string // message-verification Token
	EncodingAESKey  string // 43 characters

	// PushURL is the component's authorization-event URL (授权事件接收URL):
	// tickets and authorized/unauthorized/updateauthorized events are POSTed
	// there, encrypted. "" disables pushes (tickets are still issued).
	PushURL string
	// MessageURL is the component's message-and-event URL (消息与事件接收URL);
	// "$APPID$" in it is replaced by the authorizer's appid on every push,
	// e.g. http://127.0.0.1:8080/wechat/$APPID$/callback. PushMessage sends
	// fans' messages and events there, encrypted. "" disables message pushes.
	MessageURL string
	// PushTimeout bounds one push request (authorization events and
	// messages), like WeChat's 5 s. Default 5s.
	PushTimeout time.Duration
	// PushDelay > 0 pushes authorized/updateauthorized events asynchronously
	// after this delay, so the browser redirect happens first. 0 (default)
	// pushes synchronously before the redirect.
	PushDelay time.Duration

	// TicketInterval is the ticket push period (WeChat: 10 minutes). 0 means
	// no timer. When > 0 the first push happens right after Start, unless
	// ManualFirstTicket is set.
	TicketInterval time.Duration
	// ManualFirstTicket makes the ticket timer wait for the first PushTicket
	// call instead of pushing right after Start, and push every
	// TicketInterval from then on. For an embedder whose push URL is not
	// served yet when the sandbox starts: the local stack pushes the first
	// ticket itself once its ticket URL answers, and waits for the answer.
	ManualFirstTicket bool

	ComponentTokenTTL  time.Duration // default 2h; expires_in reports whole seconds
	AuthorizerTokenTTL time.Duration // default 2h
	// TokenGrace is how long a superseded access token keeps working before
	// it answers 40001. Default 5m.
	TokenGrace     time.Duration
	PreAuthCodeTTL time.Duration // default 10m
	AuthCodeTTL    time.Duration // default 10m
	TicketTTL      time.Duration // default 12h

	// RotateRefreshTokens turns on rotation mode: every api_authorizer_token
	// issues a new refresh token and invalidates the old one at once. WeChat
	// itself only changes the refresh token on re-authorization; rotation
	// mode checks that callers persist whatever they get back.
	RotateRefreshTokens bool

	// AuthDomain, when set, emulates the 授权发起页域名 check: the login pages
	// require a Referer under this host (so a server-side redirect without a
	// user click is refused) and a redirect_uri under it.
	AuthDomain string

	// Accounts that can authorize; nil means DefaultAccounts().
	Accounts []Account

	// Web OAuth on behalf of official accounts (oauth.go).
	//
	// Fans are the WeChat users who follow the official accounts and sign
	// in through web OAuth; nil means DefaultFans() (without follows of
	// accounts the sandbox does not have). Each Follows appid must be an
	// official account of the sandbox.
	Fans []Fan
	// OAuthDomain, when set, emulates the platform's 公众号开发域名: the
	// redirect_uri of /connect/oauth2/authorize must be on this host or a
	// subdomain of it. A host name, e.g. "platform.example".
	OAuthDomain string
	// OAuthCodeTTL is how long an unused web OAuth code lasts. Default 5m.
	OAuthCodeTTL time.Duration

	// Mini-program code management (code.go, audit.go).
	//
	// PrivacyScanDuration is how long the privacy-API scan that every commit
	// starts runs, on the sandbox clock: meanwhile submit_audit and
	// security/get_code_privacy_info answer 61039. 0 (default): done at once.
	PrivacyScanDuration time.Duration
	// AuditDelay is how long an audit takes after submit_audit, on a real
	// timer (WeChat takes hours). 0 means DefaultAuditDelay (2s: `make dev`
	// shows an audit in progress); AuditImmediate (any negative value)
	// decides the audit when submit_audit answers and pushes its event right
	// after the answer. Tests that finish audits themselves (FinishAudit) set
	// a long delay.
	AuditDelay time.Duration
	// AuditRejectRate is the probability that an audit is rejected.
	AuditRejectRate float64
	// AuditEventLossRate is the probability that an audit's result event is
	// never pushed (WeChat loses some): the platform must poll get_auditstatus.
	AuditEventLossRate float64
	// AuditQuota is the component's monthly audit quota shared by all its
	// mini programs (queryquota limit; 85085 when used up). Default 1000.
	AuditQuota int

	Now    func() time.Time // clock for every expiry; default time.Now
	Logger *slog.Logger     // default slog.Default()
}

// Sandbox is a local stand-in for WeChat's side of the third-party platform
// (component) APIs. It is an http.Handler; Start also serves it on loopback.
// All methods are safe for concurrent use.
type Sandbox struct {
	cfg      Config
	log      *slog.Logger
	crypter  *wxcrypt.Crypter
	accounts []Account // in display order
	// releaseAccounts are the 全网发布 test accounts: RunReleaseCheck
	// authorizes them; Accounts and the login pages do not list them.
	releaseAccounts []Account
	client          *http.Client

	// ctx is cancelled by Close: it stops timers and pending pushes and
	// releases requests held by latency or timeout faults.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines (timer, async pushes, server)

	mu            sync.Mutex
	tickets       map[string]*ticket
	compTokens    tokenChain
	authTokens    map[string]*accessToken // index of all authorizer tokens
	preAuthCodes  map[string]*code
	authCodes     map[string]*code
	authorizers   map[string]*authorizer
	codeInserts   int
	calls         map[string]int
	served        map[string]int
	faults        map[string]*faultState
	pushes        []Push
	messagePushes []MessagePush
	fans          map[string]map[string]*fan // appid -> openid -> customer-service window
	fanList       []*fanRecord               // the WeChat users (fans.go); the list never changes after New
	fanByID       map[string]*fanRecord      // fan ID -> fan; never written after New
	oauthCodes    map[string]*oauthCode      // web OAuth codes
	snsAccess     map[string]*snsToken       // fans' web access tokens
	snsRefresh    map[string]*snsToken       // fans' web refresh tokens
	oauthInserts  int
	custom        map[string][]CustomMessage // appid -> customer-service messages sent
	apps          map[string]*miniApp        // appid -> code management state, made on first use
	library       templateLibrary
	audits        map[int64]*audit // every audit by auditid
	auditQuota    quotaMonth       // the component's audits this month
	speedupQuota  quotaMonth       // the component's speed-ups this month
	started       bool
	closed        bool
	// The ticket timer, for the status page: nextTicket is when it pushes
	// next (real clock; zero while it waits for the first manual push).
	nextTicket      time.Time
	firstTicket     chan struct{} // closed by the first PushTicket
	firstTicketOnce sync.Once
	server          *http.Server
	serverStopped   chan struct{}

	fresh freshconn.Tracker // connections that have not sent a request yet, closed at once by Close

	releaseMu sync.Mutex // one release check at a time: they share the test accounts
}

// New validates cfg and returns a sandbox. Call Start to serve it on
// loopback, or mount it as an http.Handler.
func New(cfg Config) (*Sandbox, error) {
	if cfg.ComponentAppID == "" || cfg.ComponentSecret == "" || cfg.Token == "" {
		return nil, errors.New("sandbox: ComponentAppID, ComponentSecret and Token are required")
	}
	crypter, err := wxcrypt.New(cfg.Token, cfg.EncodingAESKey, cfg.ComponentAppID)
	if err != nil {
		return nil, fmt.Errorf("sandbox: message crypto: %w", err)
	}
	if !absoluteHTTP(cfg.PushURL) {
		return nil, fmt.Errorf("sandbox: PushURL %q is not an absolute http(s) URL", cfg.PushURL)
	}
	if !absoluteHTTP(strings.ReplaceAll(cfg.MessageURL, appIDPlaceholder, cfg.ComponentAppID)) {
		return nil, fmt.Errorf("sandbox: MessageURL %q is not an absolute http(s) URL", cfg.MessageURL)
	}
	setDefault(&cfg.ComponentTokenTTL, DefaultTokenTTL)
	setDefault(&cfg.AuthorizerTokenTTL, DefaultTokenTTL)
	setDefault(&cfg.TokenGrace, DefaultTokenGrace)
	setDefault(&cfg.PreAuthCodeTTL, DefaultCodeTTL)
	setDefault(&cfg.AuthCodeTTL, DefaultCodeTTL)
	setDefault(&cfg.TicketTTL, DefaultTicketTTL)
	setDefault(&cfg.PushTimeout, DefaultPushTimeout)
	setDefault(&cfg.AuditDelay, DefaultAuditDelay)
	setDefault(&cfg.OAuthCodeTTL, DefaultOAuthCodeTTL)
	for _, d := range []time.Duration{cfg.ComponentTokenTTL, cfg.AuthorizerTokenTTL, cfg.TokenGrace,
		cfg.PreAuthCodeTTL, cfg.AuthCodeTTL, cfg.TicketTTL, cfg.PushTimeout, cfg.PushDelay, cfg.TicketInterval,
		cfg.PrivacyScanDuration, cfg.OAuthCodeTTL} {
		if d < 0 {
			return nil, errors.New("sandbox: durations must not be negative")
		}
	}
	for _, p := range []float64{cfg.AuditRejectRate, cfg.AuditEventLossRate} {
		if !(p >= 0 && p <= 1) {
			return nil, errors.New("sandbox: AuditRejectRate and AuditEventLossRate must be between 0 and 1")
		}
	}
	switch {
	case cfg.AuditQuota < 0:
		return nil, errors.New("sandbox: AuditQuota must not be negative")
	case cfg.AuditQuota == 0:
		cfg.AuditQuota = DefaultAuditQuota
	}
	if cfg.OAuthDomain != "" && (strings.ContainsAny(cfg.OAuthDomain, "/:@?#") || strings.TrimSpace(cfg.OAuthDomain) != cfg.OAuthDomain) {
		return nil, fmt.Errorf("sandbox: OAuthDomain %q is not a host name", cfg.OAuthDomain)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	accts := cfg.Accounts
	if accts == nil {
		accts = DefaultAccounts()
	}
	if err := validateAccounts(accts); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	for _, a := range accts {
		if isReleaseTestAccount(a.AppID) {
			return nil, fmt.Errorf("sandbox: account %s: appid is one of the 全网发布 test accounts", a.AppID)
		}
	}

	s := &Sandbox{
		cfg:          cfg,
		log:          cfg.Logger.With("component", "wechat-sandbox"),
		crypter:      crypter,
		client:       &http.Client{Timeout: cfg.PushTimeout},
		tickets:      make(map[string]*ticket),
		authTokens:   make(map[string]*accessToken),
		preAuthCodes: make(map[string]*code),
		authCodes:    make(map[string]*code),
		authorizers:  make(map[string]*authorizer),
		calls:        make(map[string]int),
		served:       make(map[string]int),
		faults:       make(map[string]*faultState),
		fans:         make(map[string]map[string]*fan),
		custom:       make(map[string][]CustomMessage),
		apps:         make(map[string]*miniApp),
		audits:       make(map[int64]*audit),
		oauthCodes:   make(map[string]*oauthCode),
		snsAccess:    make(map[string]*snsToken),
		snsRefresh:   make(map[string]*snsToken),
		firstTicket:  make(chan struct{}),
	}
	s.library = newTemplateLibrary(cfg.Now())
	s.compTokens.tokens = make(map[string]*accessToken)
	for _, a := range accts {
		a = cloneAccount(a)
		s.accounts = append(s.accounts, a)
		s.authorizers[a.AppID] = &authorizer{acct: a, tokens: tokenChain{tokens: s.authTokens}}
	}
	// The 全网发布 test accounts exist on every WeChat, but only they can
	// authorize themselves (RunReleaseCheck): no page lists them.
	for _, g := range ReleaseTestGroups() {
		for _, a := range []Account{g.OfficialAccount, g.MiniProgram} {
			s.releaseAccounts = append(s.releaseAccounts, a)
			s.authorizers[a.AppID] = &authorizer{acct: a, tokens: tokenChain{tokens: s.authTokens}}
		}
	}
	fans := cfg.Fans
	if fans == nil {
		fans = DefaultFans()
	}
	s.fanList, s.fanByID, err = newFanRecords(fans, s.isOfficialAccount, cfg.Fans != nil, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// appIDPlaceholder is replaced by the authorizer appid in MessageURL.
const appIDPlaceholder = "$APPID$"

// absoluteHTTP reports whether raw is "" or an absolute http(s) URL.
func absoluteHTTP(raw string) bool {
	if raw == "" {
		return true
	}
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func (s *Sandbox) now() time.Time { return s.cfg.Now() }

// ComponentAppID returns the sandbox component's appid.
func (s *Sandbox) ComponentAppID() string { return s.cfg.ComponentAppID }

// Accounts returns the accounts that can authorize, in display order. The
// 全网发布 test accounts (ReleaseTestGroups) are not among them.
func (s *Sandbox) Accounts() []Account {
	out := make([]Account, len(s.accounts))
	for i, a := range s.accounts {
		out[i] = cloneAccount(a)
	}
	return out
}

// listedAccountsLocked returns the configured accounts followed by the
// 全网发布 test accounts that are authorized right now: what
// api_get_authorizer_list and the sandbox's own pages show. Caller holds
// s.mu.
func (s *Sandbox) listedAccountsLocked() []Account {
	out := slices.Clone(s.accounts)
	for _, a := range s.releaseAccounts {
		if s.authorizers[a.AppID].authorized {
			out = append(out, a)
		}
	}
	return out
}

// Start serves the sandbox on 127.0.0.1 with a free port and starts the
// ticket timer. It returns the base URL, e.g. http://127.0.0.1:41234.
func (s *Sandbox) Start() (baseURL string, err error) { return s.StartAt("127.0.0.1:0") }

// StartAt is Start on a given listen address.
func (s *Sandbox) StartAt(addr string) (baseURL string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", ErrClosed
	}
	if s.started {
		return "", ErrAlreadyStarted
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("sandbox: listen on %s: %w", addr, err)
	}
	s.started = true
	s.server = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnState:         s.fresh.Track,
	}
	s.serverStopped = make(chan struct{})
	s.wg.Go(func() {
		defer close(s.serverStopped)
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sandbox server stopped", "err", err)
		}
	})
	if s.cfg.TicketInterval > 0 {
		s.wg.Go(s.ticketTimer)
	}
	baseURL = "http://" + ln.Addr().String()
	s.log.Info("wechat sandbox listening", "base_url", baseURL)
	return baseURL, nil
}

// ticketTimer pushes a ticket right away (or, with ManualFirstTicket, waits
// for the first PushTicket) and then every TicketInterval, the way WeChat
// pushes component_verify_ticket every ten minutes.
func (s *Sandbox) ticketTimer() {
	if s.cfg.ManualFirstTicket {
		select {
		case <-s.ctx.Done():
			return
		case <-s.firstTicket:
		}
	}
	t := time.NewTicker(s.cfg.TicketInterval)
	defer t.Stop()
	s.setNextTicket(time.Now().Add(s.cfg.TicketInterval))
	if !s.cfg.ManualFirstTicket {
		_, _ = s.PushTicket(s.ctx) // a failed push is logged and recorded by push
	}
	for {
		select {
		case <-s.ctx.Done():
			return
		case tick := <-t.C:
			s.setNextTicket(tick.Add(s.cfg.TicketInterval))
		}
		_, _ = s.PushTicket(s.ctx)
	}
}

func (s *Sandbox) setNextTicket(t time.Time) {
	s.mu.Lock()
	s.nextTicket = t
	s.mu.Unlock()
}

// Close stops the server, the ticket timer and pending pushes, releases held
// requests, and waits for the sandbox's goroutines to finish.
func (s *Sandbox) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.server
	s.mu.Unlock()

	s.cancel() // releases held requests and stops pushes and the timer
	var err error
	if srv != nil {
		s.fresh.CloseAll()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if serr := srv.Shutdown(ctx); serr != nil {
			s.log.Warn("sandbox shutdown timed out; closing connections", "err", serr)
			err = srv.Close()
		}
		cancel()
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("sandbox: shutting down: %w", err)
	}
	return nil
}

// goBackground runs f on a tracked goroutine unless the sandbox is closed.
func (s *Sandbox) goBackground(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Go(f)
}

// Calls returns how many requests reached an endpoint, named by the last
// element of its path (e.g. "api_component_token", "componentloginpage");
// the web OAuth ones are "oauth2_authorize", "oauth_decide",
// "sns_component_access_token", "sns_component_refresh_token",
// "sns_userinfo" and "user_info".
func (s *Sandbox) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[endpoint]
}

// Served returns how many calls of an endpoint WeChat has processed (its
// state changed, its answer written or about to be held or lost by a fault).
// A call refused by a fault before the endpoint's logic is not counted.
func (s *Sandbox) Served(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[endpoint]
}

func (s *Sandbox) countServed(endpoint string) {
	s.mu.Lock()
	s.served[endpoint]++
	s.mu.Unlock()
}

// ResetCalls zeroes every call counter (faults' quota counters included).
func (s *Sandbox) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
	clear(s.served)
	for _, f := range s.faults {
		clear(f.used)
	}
}

func (s *Sandbox) countCall(endpoint string) {
	s.mu.Lock()
	s.calls[endpoint]++
	s.mu.Unlock()
}

// AllCalls returns how many requests reached each endpoint (since Start or ResetCalls).
func (s *Sandbox) AllCalls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// callCounts returns a sorted copy of the counters for the status page.
func (s *Sandbox) callCounts() []nameCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]nameCount, 0, len(s.calls))
	for k, v := range s.calls {
		out = append(out, nameCount{k, v})
	}
	slices.SortFunc(out, func(a, b nameCount) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

type nameCount struct {
	Name  string
	Count int
}

// sweepCodesLocked forgets codes and tickets long past their expiry so a
// sandbox running for days stays small. Forgotten values answer "invalid"
// rather than "expired". Caller holds s.mu.
func (s *Sandbox) sweepCodesLocked(now time.Time) {
	s.codeInserts++
	if s.codeInserts%256 != 0 {
		return
	}
	cutoff := now.Add(-24 * time.Hour)
	for _, m := range []map[string]*code{s.preAuthCodes, s.authCodes} {
		for k, c := range m {
			if c.expires.Before(cutoff) {
				delete(m, k)
			}
		}
	}
	for k, t := range s.tickets {
		if t.issued.Before(now.Add(-3 * s.cfg.TicketTTL)) {
			delete(s.tickets, k)
		}
	}
}
