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

// Web OAuth codes (addendum C.3).
const (
	CodeInvalidGrantType       = 40002
	CodeOAuthCodeInvalid       = 40029 // unknown, or issued for another appid
	CodeSNSRefreshTokenInvalid = 40030
	CodeOAuthCodeUsed          = 40163
	CodeSNSRefreshTokenMissing = 41003
	CodeOAuthCodeMissing       = 41008
	CodeSNSRefreshTokenExpired = 42002
	CodeOAuthCodeExpired       = 42003
)

// Mini-program code management and template library codes (addendum B.5).
const (
	CodeAPIUnauthorizedToComponent = 61007 // the account did not grant the permission set (18 for /wxa/)
	CodePrivacyScanPending         = 61039 // the privacy-API scan of the last commit has not finished
	CodeTesterNotFound             = 85001
	CodeTesterLimit                = 85002
	CodeTesterBound                = 85004
	CodeAuditTag                   = 85006
	CodeAuditPagePath              = 85007
	CodeAuditPending               = 85009 // a version is already under audit
	CodeAuditItemEmpty             = 85010
	CodeAuditTitle                 = 85011
	CodeInvalidAuditID             = 85012
	CodeInvalidExtJSON             = 85013
	CodeInvalidTemplateID          = 85014 // also a template_id sent as a quoted string
	CodeDomainLimit                = 85016
	CodeNoDomainToModify           = 85017
	CodeNoAuditedVersion           = 85019 // release: no passed, unreleased version
	CodeAuditItemCount             = 85023
	CodeExtJSONBadPath             = 85045
	CodeExtJSONNoPages             = 85047
	CodeNoAudit                    = 85058 // never submitted
	CodeTemplateNotFound           = 85064 // template or draft
	CodeTemplateLibraryFull        = 85065
	CodeAuditCategory              = 85077
	CodeGrayNoLiveVersion          = 85079
	CodeGrayNotPassed              = 85080
	CodeGrayPercentage             = 85081
	CodeGrayPercentageLower        = 85082
	CodeAuditQuota                 = 85085 // the provider's monthly audit quota is used up
	CodeNoCommitForAudit           = 85086
	CodeNoCommittedCode            = 86001
	CodePrivacyOwnerSetting        = 86069
	CodePrivacyVersion             = 86071
	CodePrivacyNoLive              = 86074
	CodeRevertDuringGray           = 87011
	CodeRevertNotAllowed           = 87012
	CodeUndoQuota                  = 87013
	CodePrivacyStoreExpire         = 87072
	CodeWebviewUnchanged           = 89019
	CodeWebviewNotSet              = 89020
	CodeWebviewNotRegistered       = 89021
	CodeWebviewLimit               = 89029
	CodeSpeedupNotPending          = 89402
	CodeSpeedupAlready             = 89404
	CodeSpeedupQuota               = 89405
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

	CodeInvalidGrantType:       "invalid grant_type",
	CodeOAuthCodeInvalid:       "invalid code",
	CodeSNSRefreshTokenInvalid: "invalid refresh_token",
	CodeOAuthCodeUsed:          "code been used",
	CodeSNSRefreshTokenMissing: "missing refresh_token",
	CodeOAuthCodeMissing:       "missing code",
	CodeSNSRefreshTokenExpired: "refresh_token expired",
	CodeOAuthCodeExpired:       "code expired",

	CodeAPIUnauthorizedToComponent: "api is unauthorized to component",
	CodePrivacyScanPending:         "隐私接口检查任务未完成，请稍等一分钟再重试",
	CodeTesterNotFound:             "微信号不存在或微信号设置为不可搜索",
	CodeTesterLimit:                "小程序绑定的体验者数量达到上限",
	CodeTesterBound:                "微信号已经绑定",
	CodeAuditTag:                   "标签格式错误",
	CodeAuditPagePath:              "页面路径错误",
	CodeAuditPending:               "already submit a version under auditing",
	CodeAuditItemEmpty:             "item_list 有项目为空",
	CodeAuditTitle:                 "标题填写错误",
	CodeInvalidAuditID:             "invalid auditid",
	CodeInvalidExtJSON:             "invalid ext_json",
	CodeInvalidTemplateID:          "invalid template id",
	CodeDomainLimit:                "domain count reach limit",
	CodeNoDomainToModify:           "no domain to modify after filtered, please check the domain if have been set on mp/weixin or third-party platform",
	CodeNoAuditedVersion:           "no version is under auditing",
	CodeAuditItemCount:             "审核列表填写的项目数不在 1-5 以内",
	CodeExtJSONBadPath:             "ext_json 有不存在的路径",
	CodeExtJSONNoPages:             "pages 字段为空",
	CodeNoAudit:                    "no valid audit_id exist",
	CodeTemplateNotFound:           "template not found",
	CodeTemplateLibraryFull:        "template library is full",
	CodeAuditCategory:              "小程序类目信息失效（类目中含有官方下架的类目，请重新选择类目）",
	CodeGrayNoLiveVersion:          "小程序没有线上版本，不能进行灰度",
	CodeGrayNotPassed:              "小程序提交的审核未审核通过",
	CodeGrayPercentage:             "无效的发布比例",
	CodeGrayPercentageLower:        "当前的发布比例需要比之前设置的高",
	CodeAuditQuota:                 "本月提审额度已用完",
	CodeNoCommitForAudit:           "提交代码审核之前需提前上传代码",
	CodeNoCommittedCode:            "不存在第三方的已经提交的代码",
	CodePrivacyOwnerSetting:        "owner_setting 必填字段字段缺失",
	CodePrivacyVersion:             "privacy_ver 参数无效",
	CodePrivacyNoLive:              "现网隐私协议不存在",
	CodeRevertDuringGray:           "现网已经在灰度发布，不能进行版本回退",
	CodeRevertNotAllowed:           "该版本不能回退",
	CodeUndoQuota:                  "撤回次数达到上限（每天5次，每个月10次）",
	CodePrivacyStoreExpire:         "store_expire_timestamp 参数无效",
	CodeWebviewUnchanged:           "业务域名无更改，无需重复设置",
	CodeWebviewNotSet:              "尚未设置小程序业务域名，请先在第三方平台中设置小程序业务域名后再调用本接口",
	CodeWebviewNotRegistered:       "请求保存的域名不是第三方平台中已设置的小程序业务域名或子域名",
	CodeWebviewLimit:               "业务域名数量超过限制，最多可以添加100个业务域名",
	CodeSpeedupNotPending:          "该小程序不在待审核队列，请检查是否已提交审核或已审完",
	CodeSpeedupAlready:             "本单已加速成功，请勿重复提交",
	CodeSpeedupQuota:               "本月加急额度不足，请提升提审质量以获取更多额度",
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
	ErrNoPendingAudit      = errors.New("sandbox: the mini program has no audit pending")
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
