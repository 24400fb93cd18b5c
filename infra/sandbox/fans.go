package sandbox

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Fans are the WeChat users of the sandbox: the people who follow official
// accounts and sign in to the platform's pages through web OAuth
// (oauth.go). One browser plays one fan at a time, chosen on /sandbox/fans
// and remembered in the sandbox_fan cookie.

// Fan is a WeChat user.
type Fan struct {
	ID       string   // the sandbox's name for the fan (letters, digits, - and _), e.g. "fan-1"
	NickName string   // 昵称, answered by sns/userinfo
	Follows  []string // appids of the official accounts the fan follows
}

// DefaultFans returns the fans a sandbox has when Config.Fans is nil: fan-1
// follows every default official account, fan-2 none, fan-3 only
// wx3f6a8c1e2b9d4a04 (鲜果时光).
func DefaultFans() []Fan {
	return []Fan{
		{ID: "fan-1", NickName: "小明", Follows: []string{"wx3f6a8c1e2b9d4a04", "wx6d2b4e9f7a3c1e05", "wx9c4e1a7b3f6d2b06"}},
		{ID: "fan-2", NickName: "小红"},
		{ID: "fan-3", NickName: "阿强", Follows: []string{"wx3f6a8c1e2b9d4a04"}},
	}
}

const (
	fansPath        = "/sandbox/fans"
	fanCookie       = "sandbox_fan"
	fanAvatarPrefix = avatarPrefix + "fan/" // + fan ID + ".svg": headimgurl
)

var fanIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// fanRecord is one fan. ID and NickName never change after New; follows
// is guarded by s.mu.
type fanRecord struct {
	id, nickName string
	follows      []string             // appids in the order followed
	since        map[string]time.Time // appid -> subscribe_time
}

// newFanRecords validates the configured fans. isOfficial tells which appids
// are official accounts of the sandbox; explicit is false for DefaultFans,
// whose follows of accounts the sandbox does not have are dropped.
func newFanRecords(fans []Fan, isOfficial func(string) bool, explicit bool, now time.Time) ([]*fanRecord, map[string]*fanRecord, error) {
	if len(fans) == 0 {
		return nil, nil, errors.New("Fans is empty (nil means DefaultFans)")
	}
	list := make([]*fanRecord, 0, len(fans))
	byID := make(map[string]*fanRecord, len(fans))
	for i, f := range fans {
		switch {
		case !fanIDPattern.MatchString(f.ID):
			return nil, nil, fmt.Errorf("fan %d: ID %q must be 1-64 letters, digits, - or _", i, f.ID)
		case byID[f.ID] != nil:
			return nil, nil, fmt.Errorf("fan %d: duplicate ID %s", i, f.ID)
		case f.NickName == "":
			return nil, nil, fmt.Errorf("fan %s: empty NickName", f.ID)
		}
		rec := &fanRecord{id: f.ID, nickName: f.NickName, since: make(map[string]time.Time)}
		for _, appid := range f.Follows {
			if !isOfficial(appid) {
				if explicit {
					return nil, nil, fmt.Errorf("fan %s: follows %q, which is not an official account of the sandbox", f.ID, appid)
				}
				continue
			}
			if _, dup := rec.since[appid]; !dup {
				rec.follows = append(rec.follows, appid)
				rec.since[appid] = now
			}
		}
		list = append(list, rec)
		byID[f.ID] = rec
	}
	return list, byID, nil
}

// Fans returns the sandbox's fans with whom they follow right now.
func (s *Sandbox) Fans() []Fan {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fan, len(s.fanList))
	for i, f := range s.fanList {
		out[i] = Fan{ID: f.id, NickName: f.nickName, Follows: slices.Clone(f.follows)}
	}
	return out
}

// SetFollow makes fanID follow (or unfollow) the official account appid;
// following again sets a new subscribe_time. Unknown fans and appids that
// are not official accounts of the sandbox are ignored.
func (s *Sandbox) SetFollow(appid, fanID string, follows bool) {
	f := s.fanByID[fanID]
	if f == nil || !s.isOfficialAccount(appid) {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, was := f.since[appid]
	switch {
	case follows && !was:
		f.follows = append(f.follows, appid)
		f.since[appid] = now
	case !follows && was:
		f.follows = slices.DeleteFunc(f.follows, func(a string) bool { return a == appid })
		delete(f.since, appid)
	}
}

// isOfficialAccount reports whether appid is one of the sandbox's official
// accounts (the 全网发布 test accounts included). The map of authorizers
// and their accounts never change after New.
func (s *Sandbox) isOfficialAccount(appid string) bool {
	a := s.authorizers[appid]
	return a != nil && !a.acct.IsMiniProgram()
}

// OpenID returns fanID's openid for the account appid: 28 URL-safe
// characters starting with "o", derived from a hash of both, so it is the
// same in every sandbox and differs between accounts, as on WeChat.
func (s *Sandbox) OpenID(appid, fanID string) string {
	return "o" + hashID("openid", appid, fanID)[:27]
}

// UnionID returns fanID's unionid: 28 URL-safe characters starting with
// "oU", the same for every account, as if all of the sandbox's accounts
// were bound to one 开放平台 account.
func (s *Sandbox) UnionID(fanID string) string {
	return "oU" + hashID("unionid", fanID)[:26]
}

func hashID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// fanByOpenID finds the fan whose openid for appid is openid (the fan
// list never changes after New).
func (s *Sandbox) fanByOpenID(appid, openid string) *fanRecord {
	for _, f := range s.fanList {
		if s.OpenID(appid, f.id) == openid {
			return f
		}
	}
	return nil
}

// currentFan is the fan the browser plays: the sandbox_fan cookie's, or
// the first fan.
func (s *Sandbox) currentFan(r *http.Request) *fanRecord {
	if c, err := r.Cookie(fanCookie); err == nil {
		if f := s.fanByID[c.Value]; f != nil {
			return f
		}
	}
	return s.fanList[0]
}

// fanAvatarURL is the fan's headimgurl: a generated picture on the sandbox.
func fanAvatarURL(r *http.Request, fanID string) string {
	return baseURL(r) + fanAvatarPrefix + fanID + ".svg"
}

// GET /sandbox/avatar/fan/{fanID}.svg
func (s *Sandbox) serveFanAvatar(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, fanAvatarPrefix), ".svg")
	f := s.fanByID[id]
	if !ok || f == nil {
		writeJSON(w, http.StatusNotFound, errorBody(&apiError{code: codeNotFoundSandboxLocal}))
		return
	}
	writeSVG(w, avatarSVG(Account{AppID: "fan\x00" + f.id, NickName: f.nickName}))
}

// safeNext reports whether next is a path on this site: it starts with one
// "/" (not "//" or "/\", which browsers take for another host).
func safeNext(next string) bool {
	// No backslash anywhere: http.Redirect cleans "/./\evil.com" to "/\evil.com", which browsers read as //evil.com.
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return false
	}
	if strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return false
	}
	u, err := url.Parse(next)
	return err == nil && u.Scheme == "" && u.Host == ""
}

type fansRow struct {
	ID, NickName, Avatar string
	Current              bool
	Use                  string // link that switches to this fan
	Follows              []fansFollow
}

type fansFollow struct {
	AppID, OpenID string
	Follows       bool
}

type fansView struct {
	FansPath string
	Accounts []Account // official accounts, the columns
	Fans     []fansRow
	Next     string // where switching returns to, if anywhere
	Error    string
}

// GET /sandbox/fans lists the fans and which official accounts they follow;
// ?use=ID makes ID the browser's fan (cookie sandbox_fan) and then returns
// to next when it is a path on this site. POST /sandbox/fans with appid,
// fan and follow=1|0 follows or unfollows (SetFollow).
func (s *Sandbox) serveFans(w http.ResponseWriter, r *http.Request) {
	status := http.StatusOK
	v := fansView{FansPath: fansPath}
	current := s.currentFan(r)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		q := r.URL.Query()
		if next := q.Get("next"); safeNext(next) {
			v.Next = next
		}
		if q.Has("use") {
			f := s.fanByID[q.Get("use")]
			if f == nil {
				status, v.Error = http.StatusBadRequest, "没有这个微信用户。There is no such fan."
				break
			}
			http.SetCookie(w, &http.Cookie{Name: fanCookie, Value: f.id, Path: "/", SameSite: http.SameSiteLaxMode, HttpOnly: true})
			if v.Next != "" {
				http.Redirect(w, r, v.Next, http.StatusFound)
				return
			}
			current = f
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		appid, id := r.PostForm.Get("appid"), r.PostForm.Get("fan")
		if s.fanByID[id] == nil || !s.isOfficialAccount(appid) {
			status, v.Error = http.StatusBadRequest, "没有这个微信用户或公众号。Unknown fan or official account."
			break
		}
		s.SetFollow(appid, id, r.PostForm.Get("follow") == "1")
		http.Redirect(w, r, fansPath, http.StatusSeeOther)
		return
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	s.mu.Lock()
	for _, a := range s.listedAccountsLocked() {
		if !a.IsMiniProgram() {
			v.Accounts = append(v.Accounts, a)
		}
	}
	for _, f := range s.fanList {
		use := url.Values{"use": {f.id}}
		if v.Next != "" {
			use.Set("next", v.Next)
		}
		row := fansRow{ID: f.id, NickName: f.nickName, Avatar: fanAvatarPrefix + f.id + ".svg", Current: f == current,
			Use: fansPath + "?" + use.Encode()}
		for _, a := range v.Accounts {
			_, follows := f.since[a.AppID]
			row.Follows = append(row.Follows, fansFollow{AppID: a.AppID, OpenID: s.OpenID(a.AppID, f.id), Follows: follows})
		}
		v.Fans = append(v.Fans, row)
	}
	s.mu.Unlock()
	s.render(w, status, "fans", v)
}

// statusFan is a fan's line on the status page.
type statusFan struct {
	ID, NickName, Avatar, Follows string
	Current                       bool
}

// statusFansLocked describes the fans for the status page. Caller holds s.mu.
func (s *Sandbox) statusFansLocked(r *http.Request) []statusFan {
	current := s.currentFan(r)
	var out []statusFan
	for _, f := range s.fanList {
		names := make([]string, 0, len(f.follows))
		for _, appid := range f.follows {
			names = append(names, s.authorizers[appid].acct.NickName)
		}
		follows := strings.Join(names, "、")
		if follows == "" {
			follows = "无 none"
		}
		out = append(out, statusFan{ID: f.id, NickName: f.nickName, Avatar: fanAvatarPrefix + f.id + ".svg", Follows: follows, Current: f == current})
	}
	return out
}

const fanListTemplates = `
{{define "fans"}}{{template "head" "微信用户 Fans · WeChat sandbox"}}
<body>
<header>微信开放平台 · 沙箱<small>WeChat Open Platform sandbox</small></header>
<main>
<p><a href="/sandbox/">← 沙箱状态 Sandbox status</a></p>
<h1>微信用户 <span class="en">Fans (WeChat users)</span></h1>
<p>本浏览器以所选微信用户的身份进行网页授权。<span class="en">This browser signs in through web OAuth as the fan chosen here.</span></p>
{{if .Error}}<div class="error" id="fans-error">{{.Error}}</div>{{end}}
<table id="fans">
<tr><th></th><th>昵称 Nickname</th><th>ID</th>{{range .Accounts}}<th>{{.NickName}}<div class="meta">{{.AppID}}</div></th>{{end}}<th></th></tr>
{{range .Fans}}{{$fan := .}}<tr id="fan-{{.ID}}">
<td><img src="{{.Avatar}}" alt=""></td>
<td>{{.NickName}}{{if .Current}}<span class="badge" id="fan-current">当前 Current</span>{{end}}</td>
<td>{{.ID}}</td>
{{range .Follows}}<td id="follow-{{$fan.ID}}-{{.AppID}}">{{if .Follows}}<span class="ok">已关注 follows</span>{{else}}未关注 not following{{end}}
<div class="meta">openid {{.OpenID}}</div>
<form method="post" action="{{$.FansPath}}"><input type="hidden" name="appid" value="{{.AppID}}"><input type="hidden" name="fan" value="{{$fan.ID}}"><input type="hidden" name="follow" value="{{if .Follows}}0{{else}}1{{end}}">
{{if .Follows}}<button type="submit" class="danger">取消关注 Unfollow</button>{{else}}<button type="submit" class="danger" style="background:#07c160">关注 Follow</button>{{end}}</form></td>
{{end}}
<td>{{if not .Current}}<a href="{{.Use}}" id="use-{{.ID}}">使用 Use</a>{{end}}</td>
</tr>{{end}}
</table>
{{if .Next}}<p><a href="{{.Next}}" id="fans-next">返回 Back</a></p>{{end}}
</main></body></html>{{end}}
`
