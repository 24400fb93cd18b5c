// Package sandbox is a local, faithful stand-in for WeChat's side of the
// Open Platform third-party platform (第三方平台, "component") APIs.
//
// It serves WeChat's paths, so code under test only changes its API base
// (https://api.weixin.qq.com) and login-page base (https://mp.weixin.qq.com)
// to the sandbox's URL:
//
//   - /cgi-bin/component/api_component_token, api_start_push_ticket,
//     api_create_preauthcode, api_query_auth, api_get_authorizer_info,
//     api_authorizer_token, api_get_authorizer_list (JSON, errors as
//     {"errcode":N,"errmsg":"... rid: ..."} with HTTP 200);
//   - /cgi-bin/account/getaccountbasicinfo?access_token=AUTHORIZER_TOKEN, an
//     authorizer-token API on which 40001/42001 can be observed;
//   - /cgi-bin/message/custom/send?access_token=AUTHORIZER_TOKEN, the
//     customer-service send with WeChat's per-kind message types and its
//     windows (45015, 45047), recorded in CustomMessages;
//   - /wxa/gettemplatedraftlist, addtotemplate, gettemplatelist and
//     deletetemplate, the template library (component token);
//   - mini-program code management with an authorizer token of a mini
//     program: /wxa/commit, get_page, get_category, get_qrcode,
//     security/get_code_privacy_info, submit_audit, get_auditstatus,
//     get_latest_auditstatus, undocodeaudit, speedupaudit, queryquota,
//     release, grayrelease, getgrayreleaseplan, revertgrayrelease,
//     revertcoderelease, getversioninfo, getvisitstatus, change_visitstatus,
//     modify_domain(_directly), setwebviewdomain(_directly), bind_tester,
//     unbind_tester, memberauth, and /cgi-bin/component/setprivacysetting
//     and getprivacysetting;
//   - /cgi-bin/componentloginpage (PC) and /safe/bindcomponent (mobile), the
//     authorization pages, whose "授权 Authorize" buttons (element id
//     authorize-<appid>) post to /sandbox/authorize, which pushes the
//     authorized event and redirects to redirect_uri with auth_code;
//   - web OAuth on behalf of an authorized official account (代公众号发起
//     网页授权, open.weixin.qq.com's path on the same base URL):
//     /connect/oauth2/authorize, which redirects at once for snsapi_base and
//     shows a consent page for snsapi_userinfo (buttons oauth-allow and
//     oauth-refuse posting to /sandbox/oauth/decide), refusals being an
//     error page (element id oauth-error); /sns/oauth2/component/access_token
//     and refresh_token (component token); /sns/userinfo (the fan's token);
//     /cgi-bin/user/info (authorizer token, follow status);
//   - /sandbox/ (a status page), POST /sandbox/revoke?appid=, /sandbox/fan
//     (write to an authorized account as a fan), /sandbox/fans (choose the
//     browser's fan, cookie sandbox_fan, and who follows whom), POST
//     /sandbox/release-check (the 全网发布 check), and generated avatars and
//     QR pictures under /sandbox/avatar/ and /sandbox/qrcode/.
//
// # Behaviour
//
// Credentials behave as on WeChat (protocol reference, sections 2 and 3):
//
//   - component_verify_ticket values are pushed encrypted to Config.PushURL
//     every TicketInterval (and on PushTicket or api_start_push_ticket).
//     Any ticket younger than TicketTTL (12h) may be used; older ones are
//     61005, unknown ones 61006.
//   - Access tokens (component and authorizer) last 2h. A new token
//     supersedes the previous one, which keeps working for TokenGrace (5
//     minutes, as WeChat's helper account describes) and is then 40001
//     "access_token is invalid or not latest". Expired tokens are 42001,
//     a missing token 41001.
//   - pre_auth_code and auth_code are single-use and expire after 10
//     minutes. For auth codes the sandbox answers 61010 "code is expired"
//     for an expired code and 61009 "code is invalid" for an unknown or
//     already used one (WeChat documents neither case precisely).
//   - The refresh token changes only on re-authorization (the old one is then
//     61023), unless RotateRefreshTokens asks for a new one on every
//     api_authorizer_token. Revoked accounts are 61003.
//   - Every push is encrypted with wxcrypt into the <xml><AppId/><Encrypt/>
//     envelope and POSTed with signature, timestamp, nonce,
//     encrypt_type=aes and msg_signature. Only HTTP 200 with the body
//     "success" acknowledges it; anything else is a failed push, logged and
//     recorded in Pushes. Pushes are not retried.
//   - PushMessage sends a fan's message or an event to Config.MessageURL
//     ($APPID$ replaced) in the <xml><ToUserName/><Encrypt/> envelope with
//     the openid query parameter, and reads the answer as WeChat does: empty
//     or "success" is no reply, anything else must be a correctly signed
//     encrypted passive reply echoing the nonce (else ErrBadReply). A fan's
//     message or event opens their customer-service window.
//   - Each mini program has a 体验版 (its last commit), audits, a released
//     version with a history of five, a gray-release plan, domains, testers
//     and privacy settings. An audit ends Config.AuditDelay (a real timer,
//     default 2s) after submit_audit, rejected with AuditRejectRate, and its
//     weapp_audit_success/weapp_audit_fail event is pushed like PushMessage
//     unless AuditEventLossRate loses it. The audit quota is the
//     component's, monthly (AuditQuota). An official account's token gets
//     61007 from the code APIs.
//   - The five 全网发布 test groups (ReleaseTestGroups) exist besides
//     Config.Accounts; RunReleaseCheck authorizes one group and runs
//     WeChat's release checks against the platform.
//   - Web OAuth (protocol reference 7.1, addendum C): the authorization
//     page checks the parameter names and their order (appid, redirect_uri,
//     response_type, scope, state, component_appid; state optional), the
//     component, that appid is an authorized official account that granted
//     permission set 4, response_type=code, the scope, redirect_uri (under
//     Config.OAuthDomain, the 公众号开发域名, when set) and state (≤128
//     bytes). The callback gets code, state and appid (only state when the
//     fan refuses), inserted before a #fragment. Codes are single-use
//     (40163), last OAuthCodeTTL (5 minutes; 42003) and belong to one
//     appid (40029 otherwise). Fans' access tokens last 2h, refresh tokens
//     30 days (refresh_token keeps the refresh token). An authorizer token
//     passed as component_access_token is 48001. The Fans (Config.Fans,
//     DefaultFans) have deterministic openids per account and one unionid
//     across all accounts, as if every account were bound to the same
//     开放平台 account; user/info needs permission set 2.
//
// Deliberate simplifications: updateauthorized is pushed on every
// re-authorization (WeChat skips it when the permission sets did not
// change); every account grants all of its Account.FuncInfo; the
// 授权发起页域名 check only runs when Config.AuthDomain is set; the push
// timestamps use the sandbox clock (Config.Now). Web OAuth: snsapi_userinfo
// always asks (WeChat skips the page for fans coming from the account's own
// menu or session) and never opens the 快照页 (snapshot mode); fans' tokens
// outlive a revocation; sns/userinfo answers sex 0 and empty places; no IP
// whitelist (61004); following or unfollowing (SetFollow) pushes no event.
//
// # Test hooks
//
// Config.Now moves time without sleeping. SetFault injects latency, -1
// "system error" (by chance, or on the first calls with BusyFirst), held
// requests (timeouts), arbitrary error codes and daily quotas (45009).
// Calls counts requests per endpoint. Authorize and Revoke do what a
// merchant does in the browser; RefreshToken, InvalidateRefreshToken and
// AuthorizerTokenIssues expose the authorizer state a test needs to check.
// PushMessage, PushMessageTimes and the plaintext builders (TextMessage,
// EventMessage, AuditEvent, PrivacyApplyEvent) play fans and WeChat's
// system events; MessagePushes and CustomMessages show what happened.
// AddDraft and AddTemplate fill the template library; FinishAudit ends a
// pending audit at once; Audits and CodeStats tell what WeChat did with a
// mini program's code. Fans, OpenID, UnionID and SetFollow describe and
// change the WeChat users that web OAuth signs in.
//
// Secrets (AppSecret, Token, EncodingAESKey), tokens and codes never appear
// in the sandbox's logs or pages (web OAuth codes only in the redirect's
// Location).
package sandbox
