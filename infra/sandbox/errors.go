package sandbox

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// WeChat error codes the sandbox answers with (protocol reference 3 and 5.3).
const (
	CodeSystemBusy           = -1
	CodeInvalidCredential    = 40001 // access token unknown, revoked or superseded past the grace period
	CodeInvalidOpenID        = 40003
	CodeInvalidAppID         = 40013
	CodeInvalidAppSecret     = 40125
	CodeAccessTokenMissing   = 41001
	CodeAppIDMissing         = 41002
	CodeAppSecretMissing     = 41004
	CodeAccessTokenExpired   = 42001
	CodeRequirePOST          = 43002
	CodeEmptyPostData        = 44002
	CodeEmptyNews            = 44003
	CodeEmptyContent         = 44004
	CodeContentTooLarge      = 45002
	CodeTooManyArticles      = 45008
	CodeDailyQuota           = 45009
	CodeTooFrequent          = 45011
	CodeOutsideWindow        = 45015 // customer-service window closed (or the fan unfollowed)
	CodeWindowQuota          = 45047 // the window's customer-service messages are used up
	CodeInvalidMessageType   = 45162 // msgtype this kind of account cannot send
	CodeDataFormat           = 47001
	CodeAPIUnauthorized      = 48001
	CodeNotAuthorized        = 61003
	CodeTicketExpired        = 61005
	CodeTicketInvalid        = 61006
	CodeAuthCodeInvalid      = 61009
	CodeAuthCodeExpired      = 61010
	CodeInvalidComponent     = 61011
	CodeRefreshTokenInvalid  = 61023
	codeNotFoundSandboxLocal = 404 // not a WeChat code: unknown path on the sandbox
)

// errMessages are the errmsg texts WeChat uses for each code.
var errMessages = map[int]string{
	CodeSystemBusy:           "system error",
	CodeInvalidCredential:    "invalid credential, access_token is invalid or not latest",
	CodeInvalidOpenID:        "invalid openid",
	CodeInvalidAppID:         "invalid appid",
	CodeInvalidAppSecret:     "invalid appsecret",
	CodeAccessTokenMissing:   "access_token missing",
	CodeAppIDMissing:         "appid missing",
	CodeAppSecretMissing:     "appsecret missing",
	CodeAccessTokenExpired:   "access_token expired",
	CodeRequirePOST:          "require POST method",
	CodeEmptyPostData:        "empty post data",
	CodeEmptyNews:            "empty news data",
	CodeEmptyContent:         "empty content",
	CodeContentTooLarge:      "content size out of limit",
	CodeTooManyArticles:      "article size out of limit",
	CodeDailyQuota:           "reach max api daily quota limit",
	CodeTooFrequent:          "api minute-quota reach limit  mustslower  retry next minute",
	CodeOutsideWindow:        "response out of time limit or subscription is canceled",
	CodeWindowQuota:          "out of response count limit",
	CodeInvalidMessageType:   "invalid message type",
	CodeDataFormat:           "data format error",
	CodeAPIUnauthorized:      "api unauthorized",
	CodeNotAuthorized:        "component is not authorized by this account",
	CodeTicketExpired:        "component ticket is expired",
	CodeTicketInvalid:        "component ticket is invalid",
	CodeAuthCodeInvalid:      "code is invalid",
	CodeAuthCodeExpired:      "code is expired",
	CodeInvalidComponent:     "invalid component",
	CodeRefreshTokenInvalid:  "refresh_token is invalid",
	codeNotFoundSandboxLocal: "not found",
}

// apiError is a WeChat-style error answer: HTTP 200 (unless status is set)
// with {"errcode":N,"errmsg":"..."}.
type apiError struct {
	code   int
	detail string // appended to the standard message, e.g. "hint: ..."
	status int    // HTTP status; 0 means 200 like WeChat
}

func errCode(code int) *apiError { return &apiError{code: code} }

func errCodef(code int, format string, args ...any) *apiError {
	return &apiError{code: code, detail: fmt.Sprintf(format, args...)}
}

// message renders errmsg the way WeChat does: the fixed text, an optional
// hint, and a " rid: ..." request id suffix.
func (e *apiError) message() string {
	msg, ok := errMessages[e.code]
	if !ok {
		msg = fmt.Sprintf("error %d", e.code)
	}
	if e.detail != "" {
		msg += ", " + e.detail
	}
	return msg + " rid: " + requestID()
}

// requestID mimics WeChat's rid format, e.g. 6486d0a6-1b2c3d4e-5f6a7b8c.
func requestID() string {
	return fmt.Sprintf("%08x-%08x-%08x", rand.Uint32(), rand.Uint32(), rand.Uint32())
}

// Errors returned by Authorize, Revoke, the message pushes, the release check
// and the authorization pages. They are sentinel values so callers can tell
// them apart with errors.Is.
var (
	ErrUnknownAccount      = errors.New("sandbox: unknown account appid")
	ErrAccountNotAllowed   = errors.New("sandbox: account not allowed by auth_type/biz_appid")
	ErrUnknownPreAuthCode  = errors.New("sandbox: unknown pre_auth_code")
	ErrPreAuthCodeExpired  = errors.New("sandbox: pre_auth_code expired")
	ErrPreAuthCodeUsed     = errors.New("sandbox: pre_auth_code already used")
	ErrNotAuthorized       = errors.New("sandbox: account is not authorized")
	ErrWrongComponent      = errors.New("sandbox: component_appid does not match the sandbox component")
	ErrBadRedirectURI      = errors.New("sandbox: redirect_uri missing or not an absolute http(s) URL")
	ErrBadAuthType         = errors.New("sandbox: auth_type must be 1, 2 or 3")
	ErrAuthDomainMismatch  = errors.New("sandbox: page or redirect_uri not under the configured authorization domain")
	ErrNoPushURL           = errors.New("sandbox: no PushURL configured")
	ErrNoMessageURL        = errors.New("sandbox: no MessageURL configured: message pushes are off")
	ErrBadReply            = errors.New("passive reply rejected (the fan sees 该公众号暂时无法提供服务)")
	ErrAlreadyStarted      = errors.New("sandbox: already started")
	ErrClosed              = errors.New("sandbox: closed")
	errReceiverNotSuccess  = errors.New("receiver did not answer 200 success")
	errPushBodyUnreadable  = errors.New("reading receiver answer")
	errPushRequestBuilding = errors.New("building push request")
	errReceiverStatus      = errors.New("receiver did not answer HTTP 200")
)

// PushError reports a push that the receiver did not acknowledge with
// HTTP 200 "success". The state change that caused the push still stands,
// as it does on WeChat.
type PushError struct {
	InfoType string
	Status   int    // HTTP status, 0 if no answer
	Body     string // start of the receiver's answer
	Err      error
}

func (e *PushError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("sandbox: push %s: receiver answered HTTP %d %q: %v", e.InfoType, e.Status, e.Body, e.Err)
	}
	return fmt.Sprintf("sandbox: push %s: %v", e.InfoType, e.Err)
}

func (e *PushError) Unwrap() error { return e.Err }

// MessageError reports a message push (to MessageURL) that WeChat would
// count as failed: no answer, an HTTP status other than 200, or an answer
// that is neither empty, "success" nor a valid encrypted passive reply
// (those wrap ErrBadReply).
type MessageError struct {
	AppID   string
	MsgType string // the plaintext's MsgType, or its Event for events
	Status  int    // HTTP status, 0 if no answer
	Body    string // start of the receiver's answer
	Err     error
}

func (e *MessageError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("sandbox: message push %s to %s: receiver answered HTTP %d %q: %v", e.MsgType, e.AppID, e.Status, e.Body, e.Err)
	}
	return fmt.Sprintf("sandbox: message push %s to %s: %v", e.MsgType, e.AppID, e.Err)
}

func (e *MessageError) Unwrap() error { return e.Err }
