// Package pushes reads what WeChat POSTs to the platform's URLs (the authorization-event URL and the message
// URL): an encrypted push in an API Gateway request. It bounds the body, takes the signature parameters from
// the query, verifies msg_signature and decrypts; whatever fails is a 4xx answer that changes nothing.
package pushes

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/wxcrypt"
)

// Push is a verified, decrypted push.
type Push struct {
	Plain []byte      // the decrypted XML
	Key   wxcrypt.Key // the EncodingAESKey that decrypted it (a reply uses the same)
	Nonce string      // the request's nonce (a passive reply echoes it)
}

// Open verifies and decrypts the push in req. A failure comes back as the answer to give (4xx), logged.
func Open(ctx context.Context, c *wxcrypt.Crypter, req events.APIGatewayV2HTTPRequest, maxBody int) (Push, *events.APIGatewayV2HTTPResponse) {
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return Push{}, Reject(ctx, http.StatusBadRequest, "body is not valid base64", err)
		}
		body = b
	}
	if len(body) > maxBody {
		return Push{}, Reject(ctx, http.StatusRequestEntityTooLarge, "body too large", fmt.Errorf("%d bytes", len(body)))
	}
	q := req.QueryStringParameters
	sig, ts, nonce := q["msg_signature"], q["timestamp"], q["nonce"]
	if sig == "" || ts == "" || nonce == "" {
		return Push{}, Reject(ctx, http.StatusBadRequest, "msg_signature, timestamp and nonce are required", nil)
	}
	plain, key, err := c.Open(body, sig, ts, nonce)
	if err != nil {
		return Push{}, Reject(ctx, statusFor(err), "push rejected", err)
	}
	if !key.IsCurrent() {
		logging.From(ctx).Warn("push decrypted with the previous EncodingAESKey; WeChat has not switched to the new key yet")
	}
	return Push{Plain: plain, Key: key, Nonce: nonce}, nil
}

// statusFor maps a crypto failure to a 4xx: 401 for signatures, 403 for another appid, 400 for the rest.
func statusFor(err error) int {
	switch {
	case errors.Is(err, wxcrypt.ErrInvalidSignature):
		return http.StatusUnauthorized
	case errors.Is(err, wxcrypt.ErrAppIDMismatch):
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// Reject logs why a push is refused (err carries no secret: wxcrypt's errors never do) and answers status.
func Reject(ctx context.Context, status int, msg string, err error) *events.APIGatewayV2HTTPResponse {
	attrs := []any{"status", status}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	logging.From(ctx).Warn(msg, attrs...)
	r := Text(status, msg)
	return &r
}

// Text is a plain-text answer ("success", or why not).
func Text(status int, body string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: status,
		Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}, Body: body}
}
