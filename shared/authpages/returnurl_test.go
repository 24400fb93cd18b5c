package authpages

import (
	"net/url"
	"testing"
)

func TestReturnURLAllowlist(t *testing.T) {
	list, err := parseAllowlist([]string{
		"https://shop.example.com",
		"https://admin.example.com/after-auth/",
		"https://app.example.com:8443/back",
		"http://localhost:3000",
		"http://127.0.0.1:9000/cb",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://shop.example.com", true},
		{"https://shop.example.com/", true},
		{"https://shop.example.com/anything?x=1", true},
		{"https://SHOP.example.com:443/x", true}, // same origin, spelled differently
		{"https://admin.example.com/after-auth/", true},
		{"https://admin.example.com/after-auth/done?tenant=t1", true},
		{"https://app.example.com:8443/back", true},
		{"https://app.example.com:8443/back/more", true},
		{"http://localhost:3000/welcome", true},
		{"http://127.0.0.1:9000/cb", true},

		{"https://admin.example.com/after-authx", false},
		{"https://admin.example.com/other", false},
		{"https://admin.example.com/after-auth/../admin", false},
		{"https://admin.example.com/after-auth/%2e%2e/admin", false},
		{"https://admin.example.com/after-auth%2f..%2fadmin", false},
		{"https://app.example.com:8443/backdoor", false},
		{"https://app.example.com/back", false},               // another port
		{"http://shop.example.com/", false},                   // http, not localhost
		{"http://localhost:3001/", false},                     // another port
		{"https://localhost:3000/", false},                    // another scheme
		{"https://shop.example.com.evil.com/", false},         // another host
		{"https://evil.com/?https://shop.example.com", false}, //
		{"https://user:pw@shop.example.com/", false},          // userinfo
		{"https://shop.example.com@evil.com/", false},         // userinfo, really evil.com
		{"//shop.example.com/", false},                        // not absolute
		{"/local/path", false},
		{"javascript:alert(1)", false},
		{"https://shop.example.com\\@evil.com/", false},
		{"https://shop.example.com/ x", false},
		{"", false},
	} {
		if _, got := allowed(list, tc.url); got != tc.ok {
			t.Errorf("allowed(%q) = %v, want %v", tc.url, got, tc.ok)
		}
	}
	if _, ok := allowed(nil, "https://shop.example.com/"); ok {
		t.Error("an empty allow-list allowed a URL")
	}
}

func TestAllowlistEntriesAreValidated(t *testing.T) {
	for _, bad := range []string{
		"shop.example.com", "http://shop.example.com", "ftp://shop.example.com", "https://u@shop.example.com",
		"https://shop.example.com/?q=1", "https://shop.example.com/#f", "https://", "https://shop.example.com/../x",
	} {
		if _, err := parseAllowlist([]string{bad}); err == nil {
			t.Errorf("entry %q accepted", bad)
		}
	}
}

func TestContinueURLAppendsTheOutcome(t *testing.T) {
	u, _ := url.Parse("https://shop.example.com/done?tenant=t1&status=stale#top")
	got, _ := url.Parse(continueURL(u, "wx5a1c0e8d2b7f3a01"))
	q := got.Query()
	if q.Get("authorizer_appid") != "wx5a1c0e8d2b7f3a01" || q.Get("status") != "authorized" || q.Get("tenant") != "t1" ||
		got.Host != "shop.example.com" || got.Path != "/done" || got.Fragment != "top" {
		t.Fatalf("continue URL %q", got)
	}
	if len(q["status"]) != 1 {
		t.Fatalf("status given %d times", len(q["status"]))
	}
}
