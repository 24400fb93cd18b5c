package sandbox

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// checkPreAuthCodeLocked reports why a pre_auth_code cannot be used, if it
// cannot. Caller holds s.mu.
func (s *Sandbox) checkPreAuthCodeLocked(pre string, now time.Time) error {
	c := s.preAuthCodes[pre]
	switch {
	case c == nil:
		return ErrUnknownPreAuthCode
	case c.used:
		return ErrPreAuthCodeUsed
	case !now.Before(c.expires):
		return ErrPreAuthCodeExpired
	}
	return nil
}

// Authorize does what the "授权 Authorize" button on the authorization page
// does: it consumes preAuthCode, authorizes appid (a re-authorization gets a
// NEW refresh token; the old one answers 61023 from then on), creates a
// single-use auth_code valid for AuthCodeTTL and pushes the `authorized`
// event (`updateauthorized` if appid was already authorized) to PushURL.
//
// The push is synchronous unless Config.PushDelay > 0. If it fails, the
// authorization still stands (as on WeChat) and Authorize returns the
// auth_code together with a *PushError.
func (s *Sandbox) Authorize(ctx context.Context, appid, preAuthCode string) (authCode string, err error) {
	now := s.now()
	s.mu.Lock()
	a := s.authorizers[appid]
	if a == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("authorize %s: %w", appid, ErrUnknownAccount)
	}
	if err := s.checkPreAuthCodeLocked(preAuthCode, now); err != nil {
		s.mu.Unlock()
		return "", fmt.Errorf("authorize %s: %w", appid, err)
	}
	s.preAuthCodes[preAuthCode].used = true
	infoType, authCode, expires := s.grantLocked(a, now)
	s.mu.Unlock()
	s.log.Info("account authorized", "authorizer_appid", appid, "info_type", infoType)

	fields := authFields(authCode, expires, preAuthCode)
	if s.cfg.PushDelay > 0 {
		s.goBackground(func() {
			if s.wait(context.Background(), s.cfg.PushDelay) {
				_ = s.push(s.ctx, infoType, appid, fields...) // logged and recorded by push
			}
		})
		return authCode, nil
	}
	if err := s.push(ctx, infoType, appid, fields...); err != nil {
		return authCode, fmt.Errorf("authorize %s: %w", appid, err)
	}
	return authCode, nil
}

// grantLocked authorizes a (again): a new refresh token, its permission
// sets and a fresh single-use auth_code. infoType is the event to push:
// authorized, or updateauthorized when a was already authorized. Caller
// holds s.mu.
func (s *Sandbox) grantLocked(a *authorizer, now time.Time) (infoType, authCode string, expires time.Time) {
	infoType = InfoAuthorized
	if a.authorized {
		infoType = InfoUpdateAuthorized
	}
	a.authorized = true
	a.authTime = now
	a.refreshToken = newRefreshToken()
	a.funcInfo = append([]int(nil), a.acct.FuncInfo...)
	authCode = newAuthCode()
	expires = now.Add(s.cfg.AuthCodeTTL)
	s.authCodes[authCode] = &code{expires: expires, appid: a.acct.AppID}
	s.sweepCodesLocked(now)
	return infoType, authCode, expires
}

// authFields are the authorized/updateauthorized event's own fields.
func authFields(authCode string, expires time.Time, preAuthCode string) []xmlField {
	return []xmlField{
		{"AuthorizationCode", authCode, false},
		{"AuthorizationCodeExpiredTime", strconv.FormatInt(expires.Unix(), 10), true},
		{"PreAuthCode", preAuthCode, false},
	}
}

// Revoke does what a merchant's "取消授权" does: appid becomes unauthorized,
// its access and refresh tokens stop working at once (API calls for it then
// answer 61003, its tokens 40001) and `unauthorized` is pushed synchronously.
// A failed push is returned as a *PushError; the revocation still stands.
func (s *Sandbox) Revoke(ctx context.Context, appid string) error {
	s.mu.Lock()
	a := s.authorizers[appid]
	switch {
	case a == nil:
		s.mu.Unlock()
		return fmt.Errorf("revoke %s: %w", appid, ErrUnknownAccount)
	case !a.authorized:
		s.mu.Unlock()
		return fmt.Errorf("revoke %s: %w", appid, ErrNotAuthorized)
	}
	a.authorized = false
	a.refreshToken = ""
	a.funcInfo = nil
	a.tokens.revokeAll()
	s.mu.Unlock()
	s.log.Info("authorization revoked", "authorizer_appid", appid)

	if err := s.push(ctx, InfoUnauthorized, appid); err != nil {
		return fmt.Errorf("revoke %s: %w", appid, err)
	}
	return nil
}

// IsAuthorized reports whether appid is currently authorized.
func (s *Sandbox) IsAuthorized(appid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.authorizers[appid]
	return a != nil && a.authorized
}

// RefreshToken returns appid's currently valid authorizer_refresh_token, or
// "" if it has none (never authorized, revoked or invalidated).
func (s *Sandbox) RefreshToken(appid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.authorizers[appid]; a != nil && a.authorized {
		return a.refreshToken
	}
	return ""
}

// InvalidateRefreshToken makes appid's refresh token unusable while the
// account stays authorized: the next api_authorizer_token for it answers
// 61023 until the merchant authorizes again.
func (s *Sandbox) InvalidateRefreshToken(appid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.authorizers[appid]; a != nil {
		a.refreshToken = ""
	}
}

// InvalidateAccessTokens makes every access token issued so far for appid answer 40001 at once, as WeChat
// does when the account's tokens are reset elsewhere; the refresh token keeps working, so the next
// api_authorizer_token issues a good one.
func (s *Sandbox) InvalidateAccessTokens(appid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.authorizers[appid]; a != nil {
		a.tokens.revokeAll()
	}
}

// AuthorizerTokenIssues returns when api_authorizer_token issued access
// tokens for appid (sandbox clock), oldest first.
func (s *Sandbox) AuthorizerTokenIssues(appid string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.authorizers[appid]; a != nil {
		return append([]time.Time(nil), a.issues...)
	}
	return nil
}
