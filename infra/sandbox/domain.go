package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"strings"
)

// A mini program's server domains, business (web-view) domains and testers
// (reference 5.1, addendum B.1). The sandbox keeps one list per kind for
// each mini program: the _directly variants share the lists of their
// platform-registered counterparts, and no domain has to be registered on
// the component first (85018 never happens).

// serverDomainKinds are modify_domain's lists and the scheme each takes.
var serverDomainKinds = []struct{ field, scheme string }{
	{"requestdomain", "https"}, {"wsrequestdomain", "wss"}, {"uploaddomain", "https"},
	{"downloaddomain", "https"}, {"udpdomain", "udp"}, {"tcpdomain", "tcp"},
}

const (
	maxServerDomains  = 200 // per kind (85016)
	maxWebviewDomains = 100 // 89029 (the docs also say 300; the errmsg says 100)
	maxTesters        = 100 // 85002
)

// domainHostOK accepts a host name with a dot: no IP address, no
// localhost, nothing WeChat's own.
func domainHostOK(host string) bool {
	host = strings.ToLower(host)
	return host != "" && net.ParseIP(host) == nil && strings.Contains(host, ".") &&
		!strings.HasSuffix(host, ".") && host != "api.weixin.qq.com" &&
		!strings.ContainsFunc(host, func(r rune) bool { return !(r == '.' || r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') })
}

// validDomain checks a domain entry: scheme://host[:port] with nothing
// after the host; web-view domains take no port.
func validDomain(d, scheme string, port bool) bool {
	u, err := url.Parse(d)
	return err == nil && u.Scheme == scheme && u.User == nil && (u.Path == "" || u.Path == "/") &&
		u.RawQuery == "" && u.Fragment == "" && domainHostOK(u.Hostname()) && (port || u.Port() == "")
}

// canonicalDomain drops a trailing slash and lower-cases the entry.
func canonicalDomain(d string) string { return strings.TrimSuffix(strings.ToLower(d), "/") }

// POST /wxa/modify_domain and /wxa/modify_domain_directly
// {"action":"add|delete|set|get","requestdomain":[...],...}. Malformed
// entries (wrong scheme, an IP, a path) are skipped and echoed in
// invalid_<kind>; when every named domain is malformed, 85017.
func (s *Sandbox) apiModifyDomain(c *apiCall) (any, *apiError) {
	var req map[string]json.RawMessage
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	var action string
	_ = json.Unmarshal(req["action"], &action) // a missing or odd action is refused below
	given := make(map[string][]string)
	for _, k := range serverDomainKinds {
		if raw, ok := req[k.field]; ok {
			var list []string
			if err := json.Unmarshal(raw, &list); err != nil {
				return nil, errCodef(CodeDataFormat, "hint: %s must be a list of strings", k.field)
			}
			given[k.field] = list
		}
	}
	if !slices.Contains([]string{"add", "delete", "set", "get"}, action) {
		return nil, errCodef(CodeDataFormat, "hint: action must be add, delete, set or get")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, m := s.codeAppLocked(c)
	resp := map[string]any{"errcode": 0, "errmsg": "ok"}
	if action != "get" {
		next := make(map[string][]string)
		named, valid := 0, 0
		for _, k := range serverDomainKinds {
			cur := slices.Clone(m.domains[k.field])
			if action == "set" {
				cur = nil
			}
			invalid := []string{}
			for _, d := range given[k.field] {
				named++
				cd := canonicalDomain(d)
				switch {
				case action == "delete":
					cur = slices.DeleteFunc(cur, func(x string) bool { return x == cd })
				case !validDomain(cd, k.scheme, true):
					invalid = append(invalid, d)
				default:
					valid++
					if !slices.Contains(cur, cd) {
						cur = append(cur, cd)
					}
				}
			}
			if len(cur) > maxServerDomains {
				return nil, errCodef(CodeDomainLimit, "hint: %s", k.field)
			}
			next[k.field] = cur
			resp["invalid_"+k.field] = invalid
		}
		if action != "delete" && named > 0 && valid == 0 {
			return nil, errCode(CodeNoDomainToModify)
		}
		m.domains = next
		s.log.Info("server domains changed", "authorizer_appid", owner.acct.AppID, "action", action)
	}
	for _, k := range serverDomainKinds {
		resp[k.field] = append([]string{}, m.domains[k.field]...)
	}
	return resp, nil
}

// POST /wxa/setwebviewdomain and /wxa/setwebviewdomain_directly
// {"action":"add|delete|set|get","webviewdomain":[...]}: https, no port, no
// IP, no path (else 89021); no action means "add the component's business
// domains", which the sandbox has none of (89020); a change that changes
// nothing is 89019.
func (s *Sandbox) apiSetWebviewDomain(c *apiCall) (any, *apiError) {
	var req struct {
		Action  string   `json:"action"`
		Domains []string `json:"webviewdomain"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	switch req.Action {
	case "":
		return nil, errCode(CodeWebviewNotSet)
	case "add", "delete", "set", "get":
	default:
		return nil, errCodef(CodeDataFormat, "hint: action must be add, delete, set or get")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, m := s.codeAppLocked(c)
	if req.Action == "get" {
		return map[string]any{"errcode": 0, "errmsg": "ok", "webviewdomain": append([]string{}, m.webview...)}, nil
	}
	next := slices.Clone(m.webview)
	if req.Action == "set" {
		next = nil
	}
	for _, d := range req.Domains {
		cd := canonicalDomain(d)
		switch {
		case req.Action == "delete":
			next = slices.DeleteFunc(next, func(x string) bool { return x == cd })
		case !validDomain(cd, "https", false):
			return nil, errCodef(CodeWebviewNotRegistered, "hint: not an https domain without port or path")
		case !slices.Contains(next, cd):
			next = append(next, cd)
		}
	}
	switch {
	case len(next) > maxWebviewDomains:
		return nil, errCode(CodeWebviewLimit)
	case slices.Equal(next, m.webview):
		return nil, errCode(CodeWebviewUnchanged)
	}
	m.webview = next
	s.log.Info("webview domains changed", "authorizer_appid", owner.acct.AppID, "action", req.Action)
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// tester is a 体验者 bound to a mini program.
type tester struct {
	wechatid, userstr string
}

// testerUserStr is the stable id WeChat gives a tester of a mini program.
func testerUserStr(appid, wechatid string) string {
	sum := sha256.Sum256([]byte(appid + "\x00" + wechatid))
	return hex.EncodeToString(sum[:16])
}

// POST /wxa/bind_tester {"wechatid":"..."}
func (s *Sandbox) apiBindTester(c *apiCall) (any, *apiError) {
	var req struct {
		WechatID string `json:"wechatid"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, m := s.codeAppLocked(c)
	switch {
	case strings.TrimSpace(req.WechatID) == "":
		return nil, errCode(CodeTesterNotFound)
	case slices.ContainsFunc(m.testers, func(t tester) bool { return t.wechatid == req.WechatID }):
		return nil, errCode(CodeTesterBound)
	case len(m.testers) >= maxTesters:
		return nil, errCode(CodeTesterLimit)
	}
	t := tester{req.WechatID, testerUserStr(owner.acct.AppID, req.WechatID)}
	m.testers = append(m.testers, t)
	return map[string]any{"errcode": 0, "errmsg": "ok", "userstr": t.userstr}, nil
}

// POST /wxa/unbind_tester {"wechatid":"..."} or {"userstr":"..."}; a tester
// that is not bound is not an error.
func (s *Sandbox) apiUnbindTester(c *apiCall) (any, *apiError) {
	var req struct {
		WechatID string `json:"wechatid"`
		UserStr  string `json:"userstr"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if req.WechatID == "" && req.UserStr == "" {
		return nil, errCodef(CodeDataFormat, "hint: wechatid or userstr")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.codeAppLocked(c)
	m.testers = slices.DeleteFunc(m.testers, func(t tester) bool {
		return req.WechatID != "" && t.wechatid == req.WechatID || req.UserStr != "" && t.userstr == req.UserStr
	})
	return map[string]any{"errcode": 0, "errmsg": "ok"}, nil
}

// POST /wxa/memberauth {"action":"get_experiencer"}
func (s *Sandbox) apiMemberAuth(c *apiCall) (any, *apiError) {
	var req struct {
		Action string `json:"action"`
	}
	if e := c.decode(&req); e != nil {
		return nil, e
	}
	if req.Action != "get_experiencer" {
		return nil, errCodef(CodeDataFormat, "hint: action must be get_experiencer")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m := s.codeAppLocked(c)
	type member struct {
		UserStr string `json:"userstr"`
	}
	members := []member{}
	for _, t := range m.testers {
		members = append(members, member{t.userstr})
	}
	return map[string]any{"errcode": 0, "errmsg": "ok", "members": members}, nil
}
