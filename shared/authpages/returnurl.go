package authpages

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// maxReturnURL bounds a return URL: it travels inside the state, inside redirect_uri, inside WeChat's link.
const maxReturnURL = 1024

// allowEntry is one RETURN_URL_ALLOWLIST entry: an origin, optionally with a path prefix.
type allowEntry struct {
	scheme, host, port, path string
}

// parseAllowlist validates the configured entries ("https://shop.example.com" or
// "https://shop.example.com/after-auth/").
func parseAllowlist(entries []string) ([]allowEntry, error) {
	out := make([]allowEntry, 0, len(entries))
	for _, e := range entries {
		u, err := parseReturnURL(e)
		if err != nil {
			return nil, fmt.Errorf("return URL allow-list entry %q: %w", e, err)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
			return nil, fmt.Errorf("return URL allow-list entry %q: no query or fragment allowed", e)
		}
		out = append(out, entryOf(u))
	}
	return out, nil
}

func entryOf(u *url.URL) allowEntry {
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return allowEntry{scheme: u.Scheme, host: strings.ToLower(u.Hostname()), port: port, path: u.EscapedPath()}
}

// parseReturnURL accepts an absolute https URL (http only for localhost and 127.0.0.1) without userinfo and
// without dot segments or encoded slashes in its path, so a path-prefix match means what it says.
func parseReturnURL(raw string) (*url.URL, error) {
	if raw == "" || len(raw) > maxReturnURL {
		return nil, errors.New("empty or too long")
	}
	if strings.ContainsAny(raw, "\\ \t\r\n") {
		return nil, errors.New("contains white space or a backslash")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.User != nil {
		return nil, errors.New("userinfo not allowed")
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("not an absolute URL")
	}
	host := strings.ToLower(u.Hostname())
	switch u.Scheme {
	case "https":
	case "http":
		if host != "localhost" && host != "127.0.0.1" {
			return nil, errors.New("http is only allowed for localhost and 127.0.0.1")
		}
	default:
		return nil, errors.New("scheme must be https")
	}
	p := u.EscapedPath()
	lp := strings.ToLower(p)
	if strings.Contains(lp, "%2f") || strings.Contains(lp, "%5c") || strings.Contains(lp, "%2e") {
		return nil, errors.New("encoded slash or dot in path")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return nil, errors.New("dot segment in path")
		}
	}
	return u, nil
}

// allowed reports whether raw matches an entry: same scheme, host and port, and the entry's path as a prefix
// ending at a segment boundary ("/app" allows "/app" and "/app/x", not "/application").
func allowed(list []allowEntry, raw string) (*url.URL, bool) {
	u, err := parseReturnURL(raw)
	if err != nil {
		return nil, false
	}
	c := entryOf(u)
	if c.path == "" {
		c.path = "/"
	}
	for _, e := range list {
		if e.scheme != c.scheme || e.host != c.host || e.port != c.port {
			continue
		}
		prefix := e.path
		switch {
		case prefix == "" || prefix == "/":
			return u, true
		case strings.HasSuffix(prefix, "/"):
			if strings.HasPrefix(c.path, prefix) {
				return u, true
			}
		case c.path == prefix || strings.HasPrefix(c.path, prefix+"/"):
			return u, true
		}
	}
	return nil, false
}

// continueURL appends the outcome to an allowed return URL.
func continueURL(u *url.URL, appID string) string {
	c := *u
	q := c.Query()
	q.Set("authorizer_appid", appID)
	q.Set("status", "authorized")
	c.RawQuery = q.Encode()
	return c.String()
}
