package localrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// DefaultTimeout is the per-invocation deadline when Function.Timeout is
// zero; it is also API Gateway's maximum integration timeout.
const DefaultTimeout = 30 * time.Second

// HTTPHandler serves an API Gateway v2 handler function in-process through
// the same conversion the Runner uses: every request becomes a "$default"
// route event. The handler's context carries a lambdacontext.LambdaContext
// (AwsRequestID = the event's requestId) and a DefaultTimeout deadline.
// Handler errors and panics become 500 {"message":"Internal Server Error"}
// and are logged with slog.Default.
func HTTPHandler(h func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)) http.Handler {
	return &adapter{h: h}
}

// RoutedHTTPHandler is HTTPHandler with API Gateway routing: requests that
// match no route get 404 {"message":"Not Found"}; matched requests carry the
// route key and path parameters, exactly as Runner.ServeHTTP builds them. It
// returns an error for invalid or conflicting routes.
func RoutedHTTPHandler(routes []Route, h func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)) (http.Handler, error) {
	rt := &router{}
	for _, r := range routes {
		if err := rt.add("handler", r); err != nil {
			return nil, fmt.Errorf("localrun: %w", err)
		}
	}
	return &adapter{h: h, router: rt}, nil
}

type adapter struct {
	h      func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	router *router // nil: everything is the $default route
}

func (a *adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	routeKey, params, iam := defaultRouteKey, map[string]string(nil), false
	if a.router != nil {
		cr, p, ok := a.router.match(r.Method, r.URL.EscapedPath())
		if !ok {
			writeMessage(w, http.StatusNotFound, "Not Found", newRequestID())
			return
		}
		routeKey, params, iam = cr.route.Key(), p, cr.route.IAM
	}
	ev, err := NewHTTPEvent(r, routeKey, params, MaxBodySize)
	if err != nil {
		status, msg := http.StatusBadRequest, "Bad Request"
		if errors.Is(err, ErrBodyTooLarge) {
			status, msg = http.StatusRequestEntityTooLarge, "Request Entity Too Large"
		}
		writeMessage(w, status, msg, newRequestID())
		return
	}
	reqID := ev.RequestContext.RequestID
	if iam && !authorizeIAM(r, &ev) {
		writeMessage(w, http.StatusForbidden, "Forbidden", reqID)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), DefaultTimeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: reqID})

	resp, err := a.call(ctx, ev)
	if err != nil {
		slog.Error("localrun: handler failed", "routeKey", routeKey, "requestId", reqID, "error", err)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error", reqID)
		return
	}
	p, err := prepareResponse(resp)
	if err != nil {
		slog.Error("localrun: handler returned a malformed response", "routeKey", routeKey, "requestId", reqID, "error", err)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error", reqID)
		return
	}
	w.Header().Set("Apigw-Requestid", reqID)
	_ = p.write(w) // a failed write means the client went away
}

// call runs the handler, turning a panic into an error as the Lambda runtime does.
func (a *adapter) call(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("handler panic: %v\n%s", v, debug.Stack())
		}
	}()
	return a.h(ctx, ev)
}
