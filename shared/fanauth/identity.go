package fanauth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Identity is the claims of the signed identity (`wx_identity`, an HS256 JWT signed with the tenant's
// signing secret) a merchant's page receives after a fan's sign-in.
type Identity struct {
	jwt.RegisteredClaims        // iss: the platform's public URL; aud: the tenant; sub: the openid; iat, exp, jti
	AppID                string `json:"appid"`
	Scope                string `json:"scope"`
	// Subscribe says whether the fan follows the official account; absent (nil) when the platform cannot
	// know (the account did not grant 用户管理, or WeChat did not answer).
	Subscribe  *bool  `json:"subscribe,omitempty"`
	UnionID    string `json:"unionid,omitempty"`
	NickName   string `json:"nickname,omitempty"`
	HeadImgURL string `json:"headimgurl,omitempty"`
}

// Sign signs the identity with HS256.
func Sign(secret string, id Identity) (string, error) {
	if secret == "" {
		return "", errors.New("sign identity: the tenant has no signing secret")
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, id).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("sign identity: %w", err)
	}
	return s, nil
}

// Verify checks a `wx_identity` as a merchant should: HS256 only, signed with the tenant's secret, issued by
// issuer for tenant, not expired (a minute of leeway for clocks). It is what the merchant's own code does with
// any JWT library; the platform's tests and the local demo page use it.
func Verify(secret, token, issuer, tenant string, now time.Time) (Identity, error) {
	var id Identity
	_, err := jwt.ParseWithClaims(token, &id, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(issuer), jwt.WithAudience(tenant),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(time.Minute), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return Identity{}, fmt.Errorf("verify identity: %w", err)
	}
	return id, nil
}
