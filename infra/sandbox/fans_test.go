package sandbox

import (
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestDefaultFans(t *testing.T) {
	fans := DefaultFans()
	want := []Fan{
		{ID: "fan-1", NickName: "小明", Follows: []string{oa1, oa2, oa3}},
		{ID: "fan-2", NickName: "小红"},
		{ID: "fan-3", NickName: "阿强", Follows: []string{oa1}},
	}
	if len(fans) != len(want) {
		t.Fatalf("DefaultFans: %v", fans)
	}
	for i := range want {
		if fans[i].ID != want[i].ID || fans[i].NickName != want[i].NickName || !slices.Equal(fans[i].Follows, want[i].Follows) {
			t.Errorf("fan %d: %+v, want %+v", i, fans[i], want[i])
		}
	}
	e := newEnv(t)
	got := e.sb.Fans()
	if len(got) != 3 || !slices.Equal(got[0].Follows, want[0].Follows) || got[1].Follows != nil && len(got[1].Follows) != 0 {
		t.Fatalf("Fans: %+v", got)
	}
	got[0].Follows[0] = "changed"
	if e.sb.Fans()[0].Follows[0] != oa1 {
		t.Fatal("Fans returns the sandbox's own slices")
	}
}

func TestFanIDs(t *testing.T) {
	e := newEnv(t)
	urlSafe := regexp.MustCompile(`^[A-Za-z0-9_-]{28}$`)
	ids := map[string]bool{}
	for _, appid := range []string{oa1, oa2} {
		for _, fan := range []string{"fan-1", "fan-2"} {
			id := e.sb.OpenID(appid, fan)
			if !urlSafe.MatchString(id) || id[0] != 'o' || id != e.sb.OpenID(appid, fan) {
				t.Errorf("OpenID(%s, %s) = %q", appid, fan, id)
			}
			ids[id] = true
		}
	}
	if len(ids) != 4 {
		t.Errorf("openids are not distinct per account and fan: %v", ids)
	}
	u1, u2 := e.sb.UnionID("fan-1"), e.sb.UnionID("fan-2")
	if !urlSafe.MatchString(u1) || !strings.HasPrefix(u1, "oU") || u1 == u2 || ids[u1] {
		t.Errorf("UnionID: %q, %q", u1, u2)
	}
	// The same in another sandbox: derived, not random.
	other := newEnv(t)
	if other.sb.OpenID(oa1, "fan-1") != e.sb.OpenID(oa1, "fan-1") || other.sb.UnionID("fan-1") != u1 {
		t.Error("ids differ between sandboxes")
	}
}

func TestSetFollow(t *testing.T) {
	e := newEnv(t)
	e.sb.SetFollow(oa2, "fan-2", true)
	e.sb.SetFollow(oa2, "fan-2", true) // no duplicate
	e.sb.SetFollow(oa1, "fan-1", false)
	e.sb.SetFollow(mp1, "fan-2", true)    // not an official account: ignored
	e.sb.SetFollow(oa1, "nobody", true)   // unknown fan: ignored
	e.sb.SetFollow("wx00", "fan-3", true) // unknown appid: ignored
	fans := e.sb.Fans()
	if !slices.Equal(fans[1].Follows, []string{oa2}) || !slices.Equal(fans[0].Follows, []string{oa2, oa3}) || !slices.Equal(fans[2].Follows, []string{oa1}) {
		t.Fatalf("Fans after SetFollow: %+v", fans)
	}
}

func TestNewValidatesFansAndOAuth(t *testing.T) {
	ok := testConfig(nil, newClock(), io.Discard)
	cases := map[string]func(*Config){
		"empty fans":          func(c *Config) { c.Fans = []Fan{} },
		"bad fan id":          func(c *Config) { c.Fans = []Fan{{ID: "fan 1", NickName: "x"}} },
		"duplicate fan":       func(c *Config) { c.Fans = []Fan{{ID: "a", NickName: "x"}, {ID: "a", NickName: "y"}} },
		"no nickname":         func(c *Config) { c.Fans = []Fan{{ID: "a"}} },
		"follows unknown":     func(c *Config) { c.Fans = []Fan{{ID: "a", NickName: "x", Follows: []string{"wx00000000000000ee"}}} },
		"follows a mini prog": func(c *Config) { c.Fans = []Fan{{ID: "a", NickName: "x", Follows: []string{mp1}}} },
		"OAuthDomain URL":     func(c *Config) { c.OAuthDomain = "https://platform.example" },
		"OAuthDomain path":    func(c *Config) { c.OAuthDomain = "platform.example/x" },
		"negative code TTL":   func(c *Config) { c.OAuthCodeTTL = -1 },
	}
	for name, tweak := range cases {
		cfg := ok
		tweak(&cfg)
		if sb, err := New(cfg); err == nil {
			sb.Close()
			t.Errorf("%s: New accepted it", name)
		}
	}
	// Custom accounts keep the default fans, without follows of missing accounts.
	cfg := ok
	cfg.Accounts = GeneratedAccounts(2)
	sb, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if fans := sb.Fans(); len(fans) != 3 || len(fans[0].Follows) != 0 {
		t.Fatalf("fans with generated accounts: %+v", fans)
	}
	cfg.Accounts = nil
	cfg.Fans = []Fan{{ID: "u1", NickName: "一", Follows: []string{oa2, oa2}}}
	sb2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sb2.Close()
	if fans := sb2.Fans(); len(fans) != 1 || !slices.Equal(fans[0].Follows, []string{oa2}) {
		t.Fatalf("custom fans: %+v", fans)
	}
}
