// Package gateway lets the service provider's own services (in any language) call WeChat through the
// platform, behind API Gateway routes that require AWS IAM (SigV4) authorization:
//
//	GET|POST /v1/authorizers/{appid}/wechat/{path+}  WeChat's API with the authorizer's access token added
//	GET|POST /v1/component/wechat/{path+}            the same with the component's token
//	GET      /v1/authorizers[?tenant=T]               the accounts (never tokens)
//	GET      /v1/authorizers/{appid}                  one account
//
// A forwarded call keeps its query, body and content type, and WeChat's answer comes back unchanged (JSON or
// binary, such as a QR code) except that token fields are taken out, marked with the header
// X-Wxtpp-Upstream: wechat. When WeChat answers that the
// token is invalid or expired (40001, 40014, 42001), the token is invalidated if it is still the stored one,
// refreshed once (one refresher across all instances: shared/credentials) and the call retried once. Callers
// never see a token; a caller-supplied token parameter, a path outside WeChat's API or one that would hand
// out tokens is refused. The handler serves nothing without API Gateway's IAM authorizer context.
package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/metrics"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// Prefix is the path every gateway route starts with.
const Prefix = "/v1/"

// Limits.
const (
	// MaxAnswer bounds a WeChat answer passed back (Lambda's synchronous response limit is 6 MB, and binary
	// answers grow by a third in base64).
	MaxAnswer = 4 << 20
	// attemptTimeout bounds one call to WeChat.
	attemptTimeout = 10 * time.Second
)

// UpstreamHeader marks an answer that is WeChat's own (any other answer is the gateway's, JSON with "error").
const UpstreamHeader = "X-Wxtpp-Upstream"

// Accounts reads authorizers (tokenstore.Store).
type Accounts interface {
	Authorizer(ctx context.Context, appID string) (tokenstore.Authorizer, error)
	Authorizers(ctx context.Context, tenant string) ([]tokenstore.Authorizer, error)
}

// AuthorizerTokens hands out and invalidates authorizer tokens (credentials.Authorizers).
type AuthorizerTokens interface {
	Do(ctx context.Context, appID string, fn func(token string) error) error
}

// ComponentTokens does the same for the component token (credentials.Component).
type ComponentTokens interface {
	Do(ctx context.Context, fn func(token string) error) error
}

// Handler serves the gateway routes.
type Handler struct {
	Accounts    Accounts
	Authorizers AuthorizerTokens
	Component   ComponentTokens
	APIBase     string       // https://api.weixin.qq.com, or the sandbox
	HTTP        *http.Client // nil: a client without an overall timeout that follows no redirect
	Logger      *slog.Logger

	// rejections remembers, per credential, the last token this process saw WeChat reject and when: a caller
	// that keeps calling an API the token does not fit (WeChat answers 40001 to a fresh token too) may cause
	// at most one refresh per RefreshEvery, while every caller of a really dead token retries.
	rejections sync.Map // key -> rejection
}

// RefreshEvery bounds how often one instance lets callers' 40001 answers refresh the same credential.
const RefreshEvery = time.Minute

type rejection struct {
	token string
	at    time.Time
}

// noRedirects is the client used without Handler.HTTP: WeChat's API does not redirect, and a followed
// redirect would repeat the token-bearing URL in a Referer.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// mayRefresh reports whether a rejection of token for key may invalidate it and retry.
func (h *Handler) mayRefresh(key, token string, now time.Time) bool {
	for {
		v, loaded := h.rejections.LoadOrStore(key, rejection{token: token, at: now})
		if !loaded {
			return true
		}
		r := v.(rejection)
		switch {
		case r.token == token:
			return true // the same dead token: this caller retries with the refreshed one
		case now.Sub(r.at) < RefreshEvery:
			return false
		}
		if h.rejections.CompareAndSwap(key, r, rejection{token: token, at: now}) {
			return true
		}
	}
}

// Handle is the Lambda handler (API Gateway HTTP API, payload 2.0).
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	log := h.logger().With("request_id", req.RequestContext.RequestID, "path", req.RawPath)
	ctx = logging.With(ctx, log)
	caller, ok := callerOf(req)
	if !ok {
		// API Gateway only invokes these routes after checking a SigV4 signature (AWS_IAM); a request without
		// that context did not come through it and is not served.
		log.Warn("request without IAM authorization refused")
		return apiError(http.StatusForbidden, "forbidden", "this API requires AWS IAM (SigV4) authorization"), nil
	}
	log = log.With("caller", caller)
	ctx = logging.With(ctx, log)
	method := req.RequestContext.HTTP.Method
	rest, ok := strings.CutPrefix(req.RawPath, Prefix)
	if !ok {
		return apiError(http.StatusNotFound, "not_found", "no such route"), nil
	}
	parts := strings.SplitN(rest, "/", 4)
	switch {
	case parts[0] == "authorizers" && len(parts) == 1:
		return h.only(method, http.MethodGet, func() events.APIGatewayV2HTTPResponse { return h.list(ctx, req) }), nil
	case parts[0] == "authorizers" && len(parts) == 2:
		return h.only(method, http.MethodGet, func() events.APIGatewayV2HTTPResponse { return h.one(ctx, parts[1]) }), nil
	case parts[0] == "authorizers" && len(parts) == 4 && parts[2] == "wechat":
		return h.forward(ctx, req, parts[1], parts[3]), nil
	case parts[0] == "component" && len(parts) >= 3 && parts[1] == "wechat":
		return h.forward(ctx, req, "", strings.Join(parts[2:], "/")), nil
	}
	return apiError(http.StatusNotFound, "not_found", "no such route"), nil
}

// callerOf is the IAM identity API Gateway verified ("" and false without one).
func callerOf(req events.APIGatewayV2HTTPRequest) (string, bool) {
	a := req.RequestContext.Authorizer
	if a == nil || a.IAM == nil || (a.IAM.UserARN == "" && a.IAM.AccessKey == "") {
		return "", false
	}
	if a.IAM.UserARN != "" {
		return a.IAM.UserARN, true
	}
	return a.IAM.AccessKey, true
}

func (h *Handler) only(method, want string, serve func() events.APIGatewayV2HTTPResponse) events.APIGatewayV2HTTPResponse {
	if method != want {
		r := apiError(http.StatusMethodNotAllowed, "method_not_allowed", "only "+want+" is supported here")
		r.Headers["Allow"] = want
		return r
	}
	return serve()
}

// Account is what the gateway tells of an authorizer: never a token.
type Account struct {
	AppID          string `json:"appid"`
	Tenant         string `json:"tenant,omitempty"`
	Kind           string `json:"kind,omitempty"`
	Status         string `json:"status"`
	PermissionSets []int  `json:"permission_sets"`
	NickName       string `json:"nickname,omitempty"`
	PrincipalName  string `json:"principal_name,omitempty"`
	AuthorizedAt   int64  `json:"authorized_at,omitempty"` // unix ms
	RevokedAt      int64  `json:"revoked_at,omitempty"`    // unix ms
	ReauthReason   string `json:"reauth_reason,omitempty"`
}

func account(a tokenstore.Authorizer) Account {
	return Account{AppID: a.AppID, Tenant: a.Tenant, Kind: a.Kind, Status: a.Status, PermissionSets: append([]int{}, a.PermissionSets...),
		NickName: a.Info.NickName, PrincipalName: a.Info.PrincipalName, AuthorizedAt: a.AuthorizedAt, RevokedAt: a.RevokedAt,
		ReauthReason: a.ReauthReason}
}

func (h *Handler) list(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	tenant := req.QueryStringParameters["tenant"]
	list, err := h.Accounts.Authorizers(ctx, tenant)
	if err != nil {
		logging.From(ctx).Error("authorizers not listed", "error", err.Error())
		return apiError(http.StatusInternalServerError, "internal", "the accounts could not be read")
	}
	out := struct {
		Authorizers []Account `json:"authorizers"`
	}{Authorizers: []Account{}}
	for _, a := range list {
		out.Authorizers = append(out.Authorizers, account(a))
	}
	return jsonAnswer(http.StatusOK, out)
}

func (h *Handler) one(ctx context.Context, appID string) events.APIGatewayV2HTTPResponse {
	a, err := h.Accounts.Authorizer(ctx, appID)
	if errors.Is(err, tokenstore.ErrNotFound) {
		return apiError(http.StatusNotFound, "not_found", "no such authorizer")
	}
	if err != nil {
		logging.From(ctx).Error("authorizer not read", "error", err.Error())
		return apiError(http.StatusInternalServerError, "internal", "the account could not be read")
	}
	return jsonAnswer(http.StatusOK, account(a))
}

// apiPaths are the first segments of WeChat's API paths (api.weixin.qq.com) that may be forwarded.
var apiPaths = []string{"cgi-bin", "wxa", "wxaapi", "datacube", "card", "merchant", "shop", "product", "customservice",
	"tcb", "channels", "union", "intp", "semantic", "bizwifi", "marketing", "shakearound", "scan", "wxopen", "cv", "mall"}

// tokenPaths hand out tokens or authorization codes' tokens: never forwarded.
var tokenPaths = []string{"cgi-bin/token", "cgi-bin/stable_token", "cgi-bin/component/api_component_token",
	"cgi-bin/component/api_authorizer_token", "cgi-bin/component/api_query_auth", "cgi-bin/component/api_start_push_ticket"}

// tokenParams are the parameters that carry tokens: the gateway adds them; callers may not.
var tokenParams = []string{"access_token", "component_access_token", "authorizer_access_token", "authorizer_refresh_token"}

var appIDPattern = regexp.MustCompile(`^wx[0-9a-f]{16}$`)

var segmentPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// checkPath refuses a path outside WeChat's API, one that climbs (..), or one that would hand out tokens.
func checkPath(path string) error {
	segs := strings.Split(path, "/")
	for _, s := range segs {
		if !segmentPattern.MatchString(s) || s == "." || s == ".." {
			return fmt.Errorf("path %q is not a WeChat API path", path)
		}
	}
	if !slices.Contains(apiPaths, segs[0]) {
		return fmt.Errorf("path %q is outside WeChat's API (it must start with one of %s)", path, strings.Join(apiPaths, ", "))
	}
	if slices.Contains(tokenPaths, strings.ToLower(path)) {
		return fmt.Errorf("path %q hands out tokens; the platform keeps them", path)
	}
	return nil
}

// forward sends the call to WeChat with the authorizer's (appID) or the component's ("" appID) token.
func (h *Handler) forward(ctx context.Context, req events.APIGatewayV2HTTPRequest, appID, path string) events.APIGatewayV2HTTPResponse {
	log := logging.From(ctx).With("appid", appID, "wechat_path", path)
	method := req.RequestContext.HTTP.Method
	if method != http.MethodGet && method != http.MethodPost {
		r := apiError(http.StatusMethodNotAllowed, "method_not_allowed", "only GET and POST are forwarded")
		r.Headers["Allow"] = "GET, POST"
		return r
	}
	if err := checkPath(path); err != nil {
		return apiError(http.StatusBadRequest, "bad_path", err.Error())
	}
	if appID != "" && !appIDPattern.MatchString(appID) {
		return apiError(http.StatusBadRequest, "bad_appid", "the appid is not valid")
	}
	query, err := url.ParseQuery(req.RawQueryString)
	if err != nil {
		return apiError(http.StatusBadRequest, "bad_query", "the query string does not parse")
	}
	for k := range query {
		if slices.Contains(tokenParams, strings.ToLower(k)) {
			return apiError(http.StatusBadRequest, "token_supplied", "do not send "+k+": the platform adds the token")
		}
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return apiError(http.StatusBadRequest, "bad_body", "the body's base64 does not decode")
		}
	}
	tokenParam := "access_token"
	if appID == "" && strings.HasPrefix(path, "cgi-bin/component/") {
		tokenParam = "component_access_token" // WeChat's /cgi-bin/component/ APIs name it so
	}
	call := &upstreamCall{h: h, method: method, path: path, rawQuery: req.RawQueryString, tokenParam: tokenParam,
		body: body, contentType: header(req.Headers, "content-type"), credential: "authorizer:" + appID}
	if appID == "" {
		call.credential = "component"
		// Only the component's own APIs say something about the component token when they answer 40001; any
		// other API may answer so to a perfectly good token it does not take.
		call.refreshable = componentTokenPath(path)
	} else {
		call.refreshable = true
	}
	if appID != "" {
		err = h.Authorizers.Do(ctx, appID, call.do(ctx))
	} else {
		err = h.Component.Do(ctx, call.do(ctx))
	}
	retried := call.attempts.Load() > 1
	metrics.Count(log, map[string]float64{metrics.GatewayRequests: 1, metrics.GatewayTokenRetries: b2f(retried)})
	if call.answer != nil && (err == nil || wxapi.IsInvalidToken(err)) {
		log.Info("forwarded", "status", call.answer.StatusCode, "errcode", call.errcode, "retried", retried)
		return *call.answer
	}
	var na *credentials.NotAuthorizedError
	switch {
	case errors.As(err, &na):
		return apiError(http.StatusConflict, "not_authorized", "the account is not authorized (revoked or it must re-authorize)")
	case errors.Is(err, tokenstore.ErrNotFound):
		return apiError(http.StatusNotFound, "not_found", "no such authorizer")
	case errors.Is(err, credentials.ErrNoTicket):
		return apiError(http.StatusServiceUnavailable, "no_ticket", "the platform is waiting for WeChat's component_verify_ticket")
	case errors.Is(err, errTooLarge):
		return apiError(http.StatusBadGateway, "answer_too_large", err.Error())
	}
	log.Warn("not forwarded", "error", err.Error())
	return apiError(http.StatusBadGateway, "upstream_failed", "WeChat did not answer, or the token could not be had; try again")
}

var errTooLarge = fmt.Errorf("WeChat's answer is larger than %d bytes", MaxAnswer)

// upstreamCall is one forwarded call, tried at most twice (with a refreshed token the second time).
type upstreamCall struct {
	h                                  *Handler
	method, path, rawQuery, tokenParam string
	contentType                        string
	body                               []byte
	credential                         string // rejections' key
	refreshable                        bool   // a 40001 here may mean the token is dead
	attempts                           atomic.Int32
	answer                             *events.APIGatewayV2HTTPResponse
	errcode                            int
}

// componentTokenPath reports whether path is one of the APIs that take the component token.
func componentTokenPath(path string) bool {
	return strings.HasPrefix(path, "cgi-bin/component/") ||
		slices.Contains([]string{"wxa/gettemplatedraftlist", "wxa/addtotemplate", "wxa/gettemplatelist", "wxa/deletetemplate"}, path)
}

// do returns the function credentials' Do runs with a token: it reports 40001/40014/42001 as a typed error
// (so the token is invalidated and the call tried once more) and keeps every answer for the caller.
func (c *upstreamCall) do(ctx context.Context) func(token string) error {
	return func(token string) error {
		c.attempts.Add(1)
		q := c.rawQuery
		if q != "" {
			q += "&"
		}
		q += c.tokenParam + "=" + url.QueryEscape(token)
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		var rd io.Reader
		if c.method == http.MethodPost {
			rd = bytes.NewReader(c.body)
		}
		r, err := http.NewRequestWithContext(actx, c.method, strings.TrimRight(c.h.APIBase, "/")+"/"+c.path+"?"+q, rd)
		if err != nil {
			return errors.New("build the request") // the URL carries the token: not in the error
		}
		if c.contentType != "" && rd != nil {
			r.Header.Set("Content-Type", c.contentType)
		}
		hc := c.h.HTTP
		if hc == nil {
			hc = noRedirects
		}
		resp, err := hc.Do(r)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // the URL carries the token
			}
			return fmt.Errorf("call WeChat %s: %w", c.path, err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
		if err != nil {
			return fmt.Errorf("read WeChat's answer to %s: %w", c.path, err)
		}
		if len(raw) > MaxAnswer {
			return errTooLarge
		}
		ct := resp.Header.Get("Content-Type")
		ans := events.APIGatewayV2HTTPResponse{StatusCode: resp.StatusCode, Headers: map[string]string{UpstreamHeader: "wechat", "Cache-Control": "no-store"}}
		if ct != "" {
			ans.Headers["Content-Type"] = ct
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != "" {
			ans.Headers["Content-Disposition"] = cd
		}
		if textual(ct, raw) {
			raw = redactTokens(raw, ans.Headers)
			ans.Body = string(raw)
		} else {
			ans.Body, ans.IsBase64Encoded = base64.StdEncoding.EncodeToString(raw), true
		}
		c.answer, c.errcode = &ans, errcodeOf(raw)
		if wxapi.IsInvalidToken(&wxapi.Error{Code: c.errcode}) && c.refreshable && c.h.mayRefresh(c.credential, token, time.Now()) {
			return &wxapi.Error{API: c.path, Code: c.errcode, Msg: "token rejected"}
		}
		return nil
	}
}

// tokenFields are the names under which WeChat's answers carry tokens (api_get_authorizer_info's
// authorizer_refresh_token, for one): callers never see a token, so they are taken out of the answer.
var tokenFields = []string{"access_token", "refresh_token", "authorizer_access_token", "authorizer_refresh_token",
	"component_access_token", "component_verify_ticket"}

// RedactedHeader lists the token fields taken out of an answer.
const RedactedHeader = "X-Wxtpp-Redacted"

// redactTokens returns raw without any token field (at any depth), and names what it removed in headers; an
// answer without one is returned byte for byte.
func redactTokens(raw []byte, headers map[string]string) []byte {
	found := false
	for _, f := range tokenFields {
		if bytes.Contains(raw, []byte(`"`+f+`"`)) {
			found = true
		}
	}
	if !found {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return raw
	}
	removed := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, child := range t {
				if slices.Contains(tokenFields, k) {
					delete(t, k)
					removed[k] = true
					continue
				}
				walk(child)
			}
		case []any:
			for _, child := range t {
				walk(child)
			}
		}
	}
	walk(v)
	if len(removed) == 0 {
		return raw
	}
	out, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"errcode":-1,"errmsg":"answer withheld: it carried tokens"}`)
	}
	headers[RedactedHeader] = strings.Join(slices.Sorted(maps.Keys(removed)), ",")
	return out
}

// errcodeOf reads a JSON answer's errcode (0 for anything else).
func errcodeOf(raw []byte) int {
	t := bytes.TrimLeft(raw, " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		return 0
	}
	var v struct {
		Code int `json:"errcode"`
	}
	_ = json.Unmarshal(t, &v)
	return v.Code
}

// textual reports whether an answer can travel as text (JSON, text, XML in UTF-8); anything else is base64.
func textual(contentType string, raw []byte) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case strings.HasPrefix(mt, "text/"), mt == "application/json", strings.HasSuffix(mt, "+json"), mt == "application/xml":
		return true
	case mt == "":
		t := bytes.TrimLeft(raw, " \t\r\n")
		return len(t) > 0 && (t[0] == '{' || t[0] == '[')
	}
	return false
}

func header(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// apiError is the gateway's own answer: JSON {"error": code, "message": text}.
func apiError(status int, code, msg string) events.APIGatewayV2HTTPResponse {
	return jsonAnswer(status, map[string]string{"error": code, "message": msg})
}

func jsonAnswer(status int, v any) events.APIGatewayV2HTTPResponse {
	b, _ := json.Marshal(v)
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Body: string(b),
		Headers: map[string]string{"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}}
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}
