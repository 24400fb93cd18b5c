package localrun

import (
	"reflect"
	"strings"
	"testing"
)

func TestRouterMatch(t *testing.T) {
	rt := &router{}
	for fn, r := range map[string]Route{
		"callback": {Method: "POST", Path: "/wechat/{appid}/callback"},
		"events":   {Method: "POST", Path: "/wechat/component/events"},
		"start":    {Method: "GET", Path: "/auth/start"},
		"root":     {Method: "GET", Path: "/"},
		"files":    {Method: "GET", Path: "/files/{path+}"},
		"anyitem":  {Method: "ANY", Path: "/items/{id}"},
		"getitem":  {Method: "GET", Path: "/items/{id}"},
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
		{Route{Method: "", Path: "/a"}, "method"},
		{Route{Method: "get", Path: "/a"}, "method"},
		{Route{Method: "GET POST", Path: "/a"}, "method"},
		{Route{Method: "GET", Path: "a"}, "start with /"},
		{Route{Method: "GET", Path: "/a/{}"}, "parameter name"},
		{Route{Method: "GET", Path: "/a/{x}/{x}"}, "duplicate"},
		{Route{Method: "GET", Path: "/a/{p+}/b"}, "last segment"},
		{Route{Method: "GET", Path: "/a/x{y}"}, "whole segment"},
	} {
		err := (&router{}).add("f", tc.route)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want mention of %q", tc.route, err, tc.want)
		}
	}
	rt := &router{}
	if err := rt.add("a", Route{Method: "GET", Path: "/x/{id}"}); err != nil {
		t.Fatal(err)
	}
	if err := rt.add("b", Route{Method: "GET", Path: "/x/{other}"}); err == nil || !strings.Contains(err.Error(), "conflicts") {
		t.Errorf("same pattern, different param name: err = %v", err)
	}
	if err := rt.add("b", Route{Method: "POST", Path: "/x/{id}"}); err != nil {
		t.Errorf("different method must not conflict: %v", err)
	}
}
