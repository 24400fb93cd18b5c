// Package authevents handles WeChat's pushes to the authorization-event URL (授权事件接收URL,
// POST /wechat/component/events): component_verify_ticket every 10 minutes, and the authorized /
// unauthorized / updateauthorized notifications.
//
// A push is answered `success` only after its durable write, so WeChat retries anything we lost. A push that
// fails the signature, decryption or appid check gets a 4xx and changes nothing.
package authevents

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/metrics"
	"github.com/wxtpp/platform/shared/pushes"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxcrypt"
)

// DefaultMaxBody bounds a push body. Real pushes are well under 4 KB.
const DefaultMaxBody = 64 << 10

// Event is a decrypted push.
type Event struct {
	AppID                        string `xml:"AppId"`
	CreateTime                   int64  `xml:"CreateTime"`
	InfoType                     string `xml:"InfoType"`
	ComponentVerifyTicket        string `xml:"ComponentVerifyTicket"`
	AuthorizerAppID              string `xml:"AuthorizerAppid"`
	AuthorizationCode            string `xml:"AuthorizationCode"`
	AuthorizationCodeExpiredTime int64  `xml:"AuthorizationCodeExpiredTime"`
	PreAuthCode                  string `xml:"PreAuthCode"`
}

// Authorizations processes authorization notifications (authorized, updateauthorized, unauthorized).
type Authorizations interface {
	Authorized(ctx context.Context, ev Event) error
	Unauthorized(ctx context.Context, ev Event) error
}

// TokenWarmer makes sure the component token is fresh; called after a ticket is stored.
type TokenWarmer interface {
	Token(ctx context.Context) (string, error)
}

// Handler serves the authorization-event URL.
type Handler struct {
	Crypter        *wxcrypt.Crypter
	Store          *tokenstore.Store
	Component      TokenWarmer    // may be nil
	Authorizations Authorizations // may be nil: notifications are then logged and acknowledged
	MaxBody        int            // default DefaultMaxBody
	// WarmTimeout bounds the component-token refresh after a ticket (WeChat waits 5 s for the answer).
	WarmTimeout time.Duration
	Logger      *slog.Logger
}

// Handle is the Lambda handler (API Gateway HTTP API, payload 2.0).
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	log := h.logger().With("request_id", req.RequestContext.RequestID)
	ctx = logging.With(ctx, log)

	max := h.MaxBody
	if max == 0 {
		max = DefaultMaxBody
	}
	push, rejected := pushes.Open(ctx, h.Crypter, req, max)
	if rejected != nil {
		return *rejected, nil
	}
	plain := push.Plain
	var ev Event
	if err := xml.Unmarshal(plain, &ev); err != nil {
		return reject(ctx, http.StatusBadRequest, "decrypted push is not valid XML", err), nil
	}
	if ev.AppID != "" && ev.AppID != h.Crypter.AppID() {
		return reject(ctx, http.StatusForbidden, "push is for another component", fmt.Errorf("AppId %q", ev.AppID)), nil
	}
	log = log.With("info_type", ev.InfoType, "create_time", ev.CreateTime)
	ctx = logging.With(ctx, log)

	var err error
	switch ev.InfoType {
	case "component_verify_ticket":
		err = h.ticket(ctx, ev)
	case "authorized", "updateauthorized":
		if h.Authorizations == nil {
			log.Info("authorization notification acknowledged (no processor configured)", "authorizer_appid", ev.AuthorizerAppID)
			break
		}
		err = h.Authorizations.Authorized(ctx, ev)
	case "unauthorized":
		if h.Authorizations == nil {
			log.Info("authorization notification acknowledged (no processor configured)", "authorizer_appid", ev.AuthorizerAppID)
			break
		}
		err = h.Authorizations.Unauthorized(ctx, ev)
	default:
		log.Info("push with unknown InfoType acknowledged")
	}
	if errors.Is(err, errEmptyTicket) {
		return reject(ctx, http.StatusBadRequest, "component_verify_ticket push without a ticket", nil), nil
	}
	if err != nil {
		// No `success`: WeChat retries the push, and nothing is lost.
		log.Error("push not processed; WeChat will retry", "error", err.Error())
		return text(http.StatusInternalServerError, "error"), nil
	}
	return text(http.StatusOK, "success"), nil
}

func (h *Handler) ticket(ctx context.Context, ev Event) error {
	log := logging.From(ctx)
	if ev.ComponentVerifyTicket == "" {
		return errEmptyTicket
	}
	stored, err := h.Store.PutTicket(ctx, h.Crypter.AppID(), ev.ComponentVerifyTicket, ev.CreateTime)
	if err != nil {
		return err
	}
	log.Info("component_verify_ticket received", "stored", stored)
	metrics.Count(log, map[string]float64{metrics.TicketsReceived: 1})
	if h.Component == nil {
		return nil
	}
	// The ticket is durable; warming the token is best effort and bounded, so the answer stays within WeChat's 5 s.
	timeout := h.WarmTimeout
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := h.Component.Token(wctx); err != nil {
		log.Warn("component token not refreshed after ticket; the next caller will retry", "error", err.Error())
	}
	return nil
}

var errEmptyTicket = errors.New("component_verify_ticket push without a ticket")

func reject(ctx context.Context, status int, msg string, err error) events.APIGatewayV2HTTPResponse {
	return *pushes.Reject(ctx, status, msg, err)
}

func text(status int, body string) events.APIGatewayV2HTTPResponse { return pushes.Text(status, body) }

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}
