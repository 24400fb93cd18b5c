package localrun

import (
	"fmt"
	"net/url"
	"strings"
)

// Route is one API Gateway HTTP API route served by a function, e.g.
// {Method: "POST", Path: "/wechat/{appid}/callback"}. A {name} segment matches
// exactly one path segment and becomes pathParameters["name"]; a final
// {name+} segment matches the rest of the path (one or more segments).
// Method "ANY" matches every method, as in API Gateway.
type Route struct {
	Method, Path string
	// IAM plays AuthorizationType AWS_IAM: only requests SigV4-signed with LocalCredentials reach the
	// function, with the caller in requestContext.authorizer.iam (iam.go).
	IAM bool
}

// Key is the API Gateway route key, e.g. "POST /wechat/{appid}/callback".
func (r Route) Key() string { return r.Method + " " + r.Path }

type segKind int

// Ordered from most to least specific: API Gateway prefers literal segments
// over parameters, and parameters over greedy parameters.
const (
	segLiteral segKind = iota
	segParam
	segGreedy
)

type segment struct {
	kind segKind
	text string // literal text, or the parameter name
}

// compiledRoute is a parsed Route plus the function that serves it.
type compiledRoute struct {
	route Route
	fn    string
	segs  []segment
}

// parseRoute validates a route and splits its path into segments.
func parseRoute(rt Route) (compiledRoute, error) {
	if rt.Method == "" || !isToken(rt.Method) || strings.ToUpper(rt.Method) != rt.Method {
		return compiledRoute{}, fmt.Errorf("route %q: method must be an upper-case HTTP method or ANY", rt.Key())
	}
	if !strings.HasPrefix(rt.Path, "/") {
		return compiledRoute{}, fmt.Errorf("route %q: path must start with /", rt.Key())
	}
	cr := compiledRoute{route: rt}
	if rt.Path == "/" {
		return cr, nil
	}
	parts := strings.Split(rt.Path[1:], "/")
	seen := map[string]bool{}
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			name := p[1 : len(p)-1]
			kind := segParam
			if strings.HasSuffix(name, "+") {
				if i != len(parts)-1 {
					return compiledRoute{}, fmt.Errorf("route %q: greedy parameter %s must be the last segment", rt.Key(), p)
				}
				name = strings.TrimSuffix(name, "+")
				kind = segGreedy
			}
			if !validParamName(name) {
				return compiledRoute{}, fmt.Errorf("route %q: invalid parameter name %q", rt.Key(), name)
			}
			if seen[name] {
				return compiledRoute{}, fmt.Errorf("route %q: duplicate parameter %q", rt.Key(), name)
			}
			seen[name] = true
			cr.segs = append(cr.segs, segment{kind: kind, text: name})
		case strings.ContainsAny(p, "{}"):
			return compiledRoute{}, fmt.Errorf("route %q: braces must enclose a whole segment", rt.Key())
		default:
			cr.segs = append(cr.segs, segment{kind: segLiteral, text: p})
		}
	}
	return cr, nil
}

func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// router matches requests to routes. It is immutable after construction.
type router struct {
	routes []compiledRoute
}

// add registers a route for fn; the same method and path may be served once.
func (rt *router) add(fn string, r Route) error {
	cr, err := parseRoute(r)
	if err != nil {
		return err
	}
	for _, other := range rt.routes {
		if other.route.Method == r.Method && samePattern(other.segs, cr.segs) {
			return fmt.Errorf("route %q of %s conflicts with %q of %s", r.Key(), fn, other.route.Key(), other.fn)
		}
	}
	cr.fn = fn
	rt.routes = append(rt.routes, cr)
	return nil
}

// samePattern reports whether two routes match exactly the same paths
// (parameter names do not matter).
func samePattern(a, b []segment) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].kind != b[i].kind || a[i].kind == segLiteral && a[i].text != b[i].text {
			return false
		}
	}
	return true
}

// match finds the most specific route for method and the escaped request
// path, returning it with its decoded path parameters.
func (rt *router) match(method, escapedPath string) (*compiledRoute, map[string]string, bool) {
	reqSegs, ok := splitPath(escapedPath)
	if !ok {
		return nil, nil, false
	}
	var best *compiledRoute
	var bestParams map[string]string
	for i := range rt.routes {
		cr := &rt.routes[i]
		if cr.route.Method != method && cr.route.Method != "ANY" {
			continue
		}
		params, ok := cr.matchPath(reqSegs)
		if !ok {
			continue
		}
		if best == nil || moreSpecific(cr, best) {
			best, bestParams = cr, params
		}
	}
	return best, bestParams, best != nil
}

// moreSpecific orders candidate routes the way API Gateway does: the first
// segment where they differ decides (literal beats {param} beats {param+}),
// then a longer route, then an exact method over ANY.
func moreSpecific(a, b *compiledRoute) bool {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		if a.segs[i].kind != b.segs[i].kind {
			return a.segs[i].kind < b.segs[i].kind
		}
	}
	if len(a.segs) != len(b.segs) {
		return len(a.segs) > len(b.segs)
	}
	return a.route.Method != "ANY" && b.route.Method == "ANY"
}

// splitPath splits an escaped path into decoded segments; "/" has none.
func splitPath(escaped string) ([]string, bool) {
	if !strings.HasPrefix(escaped, "/") {
		return nil, false
	}
	if escaped == "/" {
		return nil, true
	}
	raw := strings.Split(escaped[1:], "/")
	out := make([]string, len(raw))
	for i, s := range raw {
		d, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		out[i] = d
	}
	return out, true
}

func (cr *compiledRoute) matchPath(reqSegs []string) (map[string]string, bool) {
	var params map[string]string
	set := func(k, v string) {
		if params == nil {
			params = map[string]string{}
		}
		params[k] = v
	}
	for i, s := range cr.segs {
		if s.kind == segGreedy {
			rest := reqSegs[min(i, len(reqSegs)):]
			if len(rest) == 0 || len(rest) == 1 && rest[0] == "" {
				return nil, false
			}
			set(s.text, strings.Join(rest, "/"))
			return params, true
		}
		if i >= len(reqSegs) {
			return nil, false
		}
		switch s.kind {
		case segLiteral:
			if reqSegs[i] != s.text {
				return nil, false
			}
		case segParam:
			if reqSegs[i] == "" {
				return nil, false
			}
			set(s.text, reqSegs[i])
		}
	}
	if len(reqSegs) != len(cr.segs) {
		return nil, false
	}
	return params, true
}

// isToken reports whether s is an RFC 9110 token (header names, methods).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
