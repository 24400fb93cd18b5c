package fanauth

import (
	"html"
	"log/slog"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// pageHeaders: the sign-in's only page is an error page; nothing on it runs script or loads anything.
var pageHeaders = map[string]string{
	"Content-Type":            "text/html; charset=utf-8",
	"Cache-Control":           "no-store",
	"X-Content-Type-Options":  "nosniff",
	"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"Referrer-Policy":         "no-referrer",
	"X-Frame-Options":         "DENY",
}

// The page is written by hand, as authpages' are: executing an html/template makes the linker keep every
// exported method of every type in the binary (reflection), which grows the function by about 8 MB.
const pageHead = `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>无法登录 · Sign-in failed</title>
<style>body{font:16px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f5f5f5;color:#222}
main{max-width:28rem;margin:3rem auto;padding:1.5rem;background:#fff;border-radius:.5rem}
h1{font-size:1.25rem}.en{color:#666}.note{color:#999;font-size:.8rem}</style></head>
<body><main>
<h1>无法登录 <span class="en">Sign-in failed</span></h1>
`

func errorPage(status int, zh, en, requestID string) string {
	var b strings.Builder
	b.WriteString(pageHead)
	b.WriteString(`<div id="error"><p>`)
	b.WriteString(html.EscapeString(zh))
	b.WriteString(`</p><p class="en">`)
	b.WriteString(html.EscapeString(en))
	b.WriteString(`</p></div>
<p class="note">HTTP `)
	b.WriteString(strconv.Itoa(status))
	if requestID != "" {
		b.WriteString(" · 请求编号 Request ID ")
		b.WriteString(html.EscapeString(requestID))
	}
	b.WriteString("</p>\n</main></body></html>\n")
	return b.String()
}

// page logs why (never a state, code, token or identity: the errors given here carry none) and answers with
// the error page.
func (r *request) page(status int, msg string, err error, zh, en string) events.APIGatewayV2HTTPResponse {
	attrs := []any{"status", status}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	r.log.Log(r.ctx, level, msg, attrs...)

	h := make(map[string]string, len(pageHeaders))
	for k, v := range pageHeaders {
		h[k] = v
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h, Body: errorPage(status, zh, en, r.reqID)}
}
