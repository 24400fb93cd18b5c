package localrun

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Limits and identities of the emulated AWS side.
const (
	// MaxBodySize is the API Gateway HTTP API request payload limit (10 MB).
	MaxBodySize = 10 << 20
	// MaxInvokePayload is Lambda's synchronous invocation request and
	// response payload limit (6 MB).
	MaxInvokePayload = 6 << 20
	// AccountID and APIID fill requestContext and function ARNs.
	AccountID = "000000000000"
	APIID     = "localrun"
	// DefaultRegion is used when neither the runner's environment nor the
	// function's sets AWS_REGION.
	DefaultRegion = "us-east-1"

	apiGatewayTimeFormat = "02/Jan/2006:15:04:05 -0700"
	defaultRouteKey      = "$default"
)

// ErrBodyTooLarge is returned by NewHTTPEvent when the request body exceeds
// the limit; API Gateway answers such requests with 413.
var ErrBodyTooLarge = errors.New("localrun: request body exceeds the API Gateway payload limit")

// NewHTTPEvent converts r into the event API Gateway HTTP API sends to a
// Lambda integration with payload format 2.0. routeKey is the matched route
// ("POST /wechat/{appid}/callback", or "$default"); pathParams are the
// decoded path parameters. The body is read fully; a body over maxBody bytes
// (MaxBodySize when maxBody <= 0) yields an error wrapping ErrBodyTooLarge.
func NewHTTPEvent(r *http.Request, routeKey string, pathParams map[string]string, maxBody int64) (events.APIGatewayV2HTTPRequest, error) {
	if maxBody <= 0 {
		maxBody = MaxBodySize
	}
	if r.ContentLength > maxBody {
		return events.APIGatewayV2HTTPRequest{}, fmt.Errorf("%w: %d bytes declared, limit %d", ErrBodyTooLarge, r.ContentLength, maxBody)
	}
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			return events.APIGatewayV2HTTPRequest{}, fmt.Errorf("localrun: read request body: %w", err)
		}
		if int64(len(body)) > maxBody {
			return events.APIGatewayV2HTTPRequest{}, fmt.Errorf("%w: limit %d bytes", ErrBodyTooLarge, maxBody)
		}
	}

	now := time.Now().UTC()
	sourceIP := r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		sourceIP = host
	}

	// Payload 2.0: lower-case names, repeated headers comma-joined, and the
	// Cookie headers moved out of headers into the cookies array.
	headers := make(map[string]string, len(r.Header)+5)
	var cookies []string
	for name, vals := range r.Header {
		lname := strings.ToLower(name)
		if lname == "cookie" {
			for _, v := range vals {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lname] = strings.Join(vals, ",")
	}
	if r.Host != "" {
		headers["host"] = r.Host
	}
	if xff := headers["x-forwarded-for"]; xff != "" {
		headers["x-forwarded-for"] = xff + ", " + sourceIP
	} else {
		headers["x-forwarded-for"] = sourceIP
	}
	proto, port := "http", "80"
	if r.TLS != nil {
		proto, port = "https", "443"
	}
	if _, p, err := net.SplitHostPort(r.Host); err == nil && p != "" {
		port = p
	}
	headers["x-forwarded-proto"] = proto
	headers["x-forwarded-port"] = port
	if headers["x-amzn-trace-id"] == "" {
		headers["x-amzn-trace-id"] = "Root=" + newTraceRoot(now)
	}

	var query map[string]string
	if r.URL.RawQuery != "" {
		// ParseQuery drops malformed pairs and reports an error; API Gateway
		// also passes what it can, so the partial result is used.
		values, _ := url.ParseQuery(r.URL.RawQuery)
		if len(values) > 0 {
			query = make(map[string]string, len(values))
			for k, vs := range values {
				query[k] = strings.Join(vs, ",")
			}
		}
	}

	var params map[string]string
	if len(pathParams) > 0 {
		params = make(map[string]string, len(pathParams))
		for k, v := range pathParams {
			params[k] = v
		}
	}

	domain := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		domain = h
	}
	prefix := domain
	if net.ParseIP(domain) == nil {
		prefix, _, _ = strings.Cut(domain, ".")
	}

	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              routeKey,
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    AccountID,
			Stage:        "$default",
			RequestID:    newRequestID(),
			APIID:        APIID,
			DomainName:   domain,
			DomainPrefix: prefix,
			Time:         now.Format(apiGatewayTimeFormat),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.EscapedPath(),
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if isTextContent(r.Header.Get("Content-Type")) && utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev, nil
}

// isTextContent reports whether API Gateway passes a body of this content
// type as text rather than base64.
func isTextContent(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	switch {
	case mt == "":
		return false
	case strings.HasPrefix(mt, "text/"):
		return true
	case mt == "application/json", mt == "application/xml", mt == "application/javascript",
		mt == "application/x-www-form-urlencoded":
		return true
	case strings.HasSuffix(mt, "+xml"), strings.HasSuffix(mt, "+json"):
		return true
	}
	return false
}

// newRequestID returns an id shaped like API Gateway's ("JKJaXmPLvHcESHA=").
func newRequestID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.StdEncoding.EncodeToString(b[:])
}

// newTraceRoot returns an X-Ray trace id root: 1-<epoch hex>-<24 hex>.
func newTraceRoot(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("1-%08x-%s", now.Unix(), hex.EncodeToString(b[:]))
}

// newInvocationID returns a UUIDv4, the shape of Lambda request ids.
func newInvocationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ParseHTTPResponse interprets a function's response payload the way API
// Gateway does for payload format 2.0: a JSON object with a statusCode is a
// structured response; any other valid JSON is a 200 application/json
// response whose body is the payload (a JSON string is unquoted first).
func ParseHTTPResponse(payload []byte) (events.APIGatewayV2HTTPResponse, error) {
	payload = bytes.TrimSpace(payload)
	if !json.Valid(payload) {
		return events.APIGatewayV2HTTPResponse{}, errors.New("localrun: function response is not valid JSON")
	}
	inferred := events.APIGatewayV2HTTPResponse{
		StatusCode: http.StatusOK,
		Headers:    map[string]string{"content-type": "application/json"},
		Body:       string(payload),
	}
	switch payload[0] {
	case '{':
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(payload, &probe); err != nil {
			return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("localrun: decode function response: %w", err)
		}
		if _, ok := probe["statusCode"]; !ok {
			return inferred, nil
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(payload, &resp); err != nil {
			return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("localrun: malformed function response: %w", err)
		}
		return resp, nil
	case '"':
		var s string
		if err := json.Unmarshal(payload, &s); err != nil {
			return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("localrun: decode function response: %w", err)
		}
		inferred.Body = s
	}
	return inferred, nil
}

// preparedResponse is a validated response, ready to write.
type preparedResponse struct {
	status int
	header http.Header
	body   []byte
}

// hopHeaders are recomputed by the server, never copied from the function.
var hopHeaders = map[string]bool{"Content-Length": true, "Transfer-Encoding": true, "Connection": true}

// prepareResponse validates resp completely, so nothing is written when it
// is bad.
func prepareResponse(resp events.APIGatewayV2HTTPResponse) (preparedResponse, error) {
	p := preparedResponse{status: resp.StatusCode, header: http.Header{}}
	if p.status == 0 {
		p.status = http.StatusOK
	}
	if p.status < 100 || p.status > 999 {
		return preparedResponse{}, fmt.Errorf("localrun: invalid statusCode %d", resp.StatusCode)
	}
	if resp.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			return preparedResponse{}, fmt.Errorf("localrun: response body marked isBase64Encoded is not base64: %w", err)
		}
		p.body = b
	} else {
		p.body = []byte(resp.Body)
	}
	add := func(name, value string, replace bool) error {
		if !isToken(name) {
			return fmt.Errorf("localrun: invalid response header name %q", name)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return fmt.Errorf("localrun: response header %q has a control character in its value", name)
		}
		key := http.CanonicalHeaderKey(name)
		if hopHeaders[key] {
			return nil
		}
		if replace {
			p.header.Set(key, value)
		} else {
			p.header.Add(key, value)
		}
		return nil
	}
	for k, v := range resp.Headers {
		if err := add(k, v, true); err != nil {
			return preparedResponse{}, err
		}
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			if err := add(k, v, false); err != nil {
				return preparedResponse{}, err
			}
		}
	}
	for _, c := range resp.Cookies {
		if err := add("Set-Cookie", c, false); err != nil {
			return preparedResponse{}, err
		}
	}
	return p, nil
}

func (p preparedResponse) write(w http.ResponseWriter) error {
	h := w.Header()
	for k, vs := range p.header {
		h[k] = vs
	}
	if _, ok := h["Content-Type"]; !ok {
		// No sniffing: the client sees what the function sent.
		h["Content-Type"] = nil
	}
	h.Set("Content-Length", strconv.Itoa(len(p.body)))
	w.WriteHeader(p.status)
	if _, err := w.Write(p.body); err != nil {
		return fmt.Errorf("localrun: write response body: %w", err)
	}
	return nil
}

// WriteHTTPResponse writes a payload format 2.0 response the way API Gateway
// would: statusCode (200 when zero), headers, multiValueHeaders, each cookie
// as a Set-Cookie header, and the body (decoded when isBase64Encoded). An
// invalid response (bad base64, bad header) returns an error before anything
// is written, so the caller can still answer 500.
func WriteHTTPResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) error {
	p, err := prepareResponse(resp)
	if err != nil {
		return err
	}
	return p.write(w)
}

// writeMessage writes API Gateway's JSON error shape: {"message":"..."}.
func writeMessage(w http.ResponseWriter, status int, message, requestID string) {
	body, _ := json.Marshal(map[string]string{"message": message})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if requestID != "" {
		h.Set("Apigw-Requestid", requestID)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
