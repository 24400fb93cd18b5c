package localrun

import (
	"reflect"
	"strings"
	"testing"
)

func TestRouterMatch(t *testing.T) {
	rt := &router{}
	for fn, r := range map[string]Route{
		"callback": {"POST", "/wechat/{appid}/callback"},
		"events":   {"POST", "/wechat/component/events"},
		"start":    {"GET", "/auth/start"},
		"root":     {"GET", "/"},
		"files":    {"GET", "/files/{path+}"},
		"anyitem":  {"ANY", "/items/{id}"},
		"getitem":  {"GET", "/items/{id}"},
	} {
		if err := rt.add(fn, r); err != nil {
			t.Fatalf("add %s: %v", fn, err)
		}
	}
	for _, tc := range []struct {
		method, path string
		fn           string // "" = no match
		params       map[string]string
	}{
		{"POST", "/wechat/wx123/callback", "callback", map[string]string{"appid": "wx123"}},
		{"POST", "/wechat/component/events", "events", nil}, // literal beats {appid}... at segment 2
		{"POST", "/wechat/component/callback", "callback", map[string]string{"appid": "component"}},
		{"POST", "/wechat/a%2Fb/callback", "callback", map[string]string{"appid": "a/b"}},
		{"GET", "/wechat/wx123/callback", "", nil},
		{"GET", "/auth/start", "start", nil},
		{"GET", "/auth/start/", "", nil},
		{"GET", "/", "root", nil},
		{"GET", "/files/a/b/c.txt", "files", map[string]string{"path": "a/b/c.txt"}},
		{"GET", "/files/", "", nil},
		{"GET", "/files", "", nil},
		{"GET", "/items/7", "getitem", map[string]string{"id": "7"}}, // exact method beats ANY
		{"DELETE", "/items/7", "anyitem", map[string]string{"id": "7"}},
		{"GET", "/items/%zz", "", nil}, // undecodable
		{"GET", "/nope", "", nil},
	} {
		cr, params, ok := rt.match(tc.method, tc.path)
		switch {
		case tc.fn == "" && ok:
			t.Errorf("%s %s matched %s, want no match", tc.method, tc.path, cr.fn)
		case tc.fn != "" && !ok:
			t.Errorf("%s %s: no match, want %s", tc.method, tc.path, tc.fn)
		case ok && (cr.fn != tc.fn || !reflect.DeepEqual(params, tc.params)):
			t.Errorf("%s %s = %s %v, want %s %v", tc.method, tc.path, cr.fn, params, tc.fn, tc.params)
		}
	}
}

func TestRouterRejectsBadRoutes(t *testing.T) {
	for _, tc := range []struct {
		route Route
		want  string
	}{
		{Route{"", "/a"}, "method"},
		{Route{"get", "/a"}, "method"},
		{Route{"GET POST", "/a"}, "method"},
		{Route{"GET", "a"}, "start with /"},
		{Route{"GET", "/a/{}"}, "parameter name"},
		{Route{"GET", "/a/{x}/{x}"}, "duplicate"},
		{Route{"GET", "/a/{p+}/b"}, "last segment"},
		{Route{"GET", "/a/x{y}"}, "whole segment"},
	} {
		err := (&router{}).add("f", tc.route)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want mention of %q", tc.route, err, tc.want)
		}
	}
	rt := &router{}
	if err := rt.add("a", Route{"GET", "/x/{id}"}); err != nil {
		t.Fatal(err)
	}
	if err := rt.add("b", Route{"GET", "/x/{other}"}); err == nil || !strings.Contains(err.Error(), "conflicts") {
		t.Errorf("same pattern, different param name: err = %v", err)
	}
	if err := rt.add("b", Route{"POST", "/x/{id}"}); err != nil {
		t.Errorf("different method must not conflict: %v", err)
	}
}
