package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/relay"
)

const secret = "whsec_test-secret"

var delivery = relay.Delivery{ID: "dlv_1", Tenant: "shop-1", AppID: "wx5a1c0e8d2b7f3a01",
	Message: map[string]any{"MsgType": "text", "Content": "你好", "FromUserName": "ofan"}}

// merchant is a webhook that checks the signature as the README tells merchants to, then answers with answer.
func merchant(t *testing.T, status int, answer string) (*httptest.Server, *[]relay.Delivery) {
	t.Helper()
	var got []relay.Delivery
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !relay.Verify(secret, r.Header.Get(relay.HeaderTimestamp), r.Header.Get(relay.HeaderSignature), body, time.Now(), 5*time.Minute) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var d relay.Delivery
		if err := json.Unmarshal(body, &d); err != nil || r.Header.Get(relay.HeaderDelivery) != d.ID {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		got = append(got, d)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestDeliveryIsSignedAndItsReplyRead(t *testing.T) {
	srv, got := merchant(t, 200, `{"reply":{"msgtype":"text","text":{"content":"您好！"}}}`)
	c := relay.New(true)
	res, err := c.Deliver(context.Background(), srv.URL+"/hook", secret, delivery)
	if err != nil {
		t.Fatal(err)
	}
	if reply := res.Reply; reply == nil || res.Problem != "" || reply.MsgType != "text" || reply.Text.Content != "您好！" {
		t.Fatalf("result %+v", res)
	}
	if len(*got) != 1 || (*got)[0].Message["Content"] != "你好" || (*got)[0].Tenant != "shop-1" {
		t.Fatalf("the merchant got %+v", *got)
	}
	// The signature covers timestamp and body: another secret, body or time does not verify.
	body, _ := json.Marshal(delivery)
	sig := relay.Sign(secret, 1700000000, body)
	for name, ok := range map[string]bool{
		"genuine":       relay.Verify(secret, "1700000000", sig, body, time.Unix(1700000000, 0), time.Minute),
		"other secret":  relay.Verify("other", "1700000000", sig, body, time.Unix(1700000000, 0), time.Minute),
		"other body":    relay.Verify(secret, "1700000000", sig, append(body, ' '), time.Unix(1700000000, 0), time.Minute),
		"other time":    relay.Verify(secret, "1700000001", sig, body, time.Unix(1700000000, 0), time.Minute),
		"too old":       relay.Verify(secret, "1700000000", sig, body, time.Unix(1700000000, 0).Add(time.Hour), time.Minute),
		"not a time":    relay.Verify(secret, "x", sig, body, time.Unix(1700000000, 0), time.Minute),
		"no sha256 tag": relay.Verify(secret, "1700000000", strings.TrimPrefix(sig, "sha256="), body, time.Unix(1700000000, 0), time.Minute),
	} {
		if ok != (name == "genuine") {
			t.Errorf("%s: verified %v", name, ok)
		}
	}
}

func TestFailedDeliveriesAreErrors(t *testing.T) {
	c := relay.New(true)
	c.Timeout = 200 * time.Millisecond
	for name, tc := range map[string]struct {
		status int
		answer string
		slow   bool
		want   any
	}{
		"500":      {status: 500, want: &relay.StatusError{}},
		"redirect": {status: 302, want: &relay.StatusError{}},
		"too slow": {status: 200, slow: true},
	} {
		t.Run(name, func(t *testing.T) {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if tc.slow {
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.answer)
			}))
			defer srv.Close()
			defer close(release) // before Close, which waits for the handler
			_, err := c.Deliver(context.Background(), srv.URL, secret, delivery)
			if err == nil {
				t.Fatal("delivered")
			}
			if want, ok := tc.want.(*relay.StatusError); ok && !errors.As(err, &want) {
				t.Fatalf("want a StatusError, got %v", err)
			}
		})
	}
}

// Any 2xx is a delivery: the merchant has the message. A reply that cannot be sent is reported with it, not
// turned into a failure that would deliver the message again.
func TestEvery2xxIsADelivery(t *testing.T) {
	c := relay.New(true)
	for name, tc := range map[string]struct {
		status      int
		answer      string
		wantProblem bool
	}{
		"204 no body":      {status: 204},
		"plain success":    {status: 200, answer: "success"},
		"XML, not JSON":    {status: 200, answer: "<xml/>"},
		"JSON, no reply":   {status: 202, answer: `{"ok":true}`},
		"link reply":       {status: 200, answer: `{"reply":{"msgtype":"link","link":{"title":"t","description":"d","url":"u","thumb_url":"x"}}}`, wantProblem: true},
		"two news":         {status: 200, answer: `{"reply":{"msgtype":"news","news":{"articles":[{"title":"a","url":"u"},{"title":"b","url":"v"}]}}}`, wantProblem: true},
		"body for another": {status: 200, answer: `{"reply":{"msgtype":"text","image":{"media_id":"m"}}}`, wantProblem: true},
		"too large":        {status: 200, answer: `{"reply":{"msgtype":"text","text":{"content":"` + strings.Repeat("x", 70<<10) + `"}}}`, wantProblem: true},
	} {
		t.Run(name, func(t *testing.T) {
			srv, got := merchant(t, tc.status, tc.answer)
			res, err := c.Deliver(context.Background(), srv.URL, secret, delivery)
			if err != nil {
				t.Fatalf("not a delivery: %v", err)
			}
			if len(*got) != 1 {
				t.Fatalf("the merchant got %d deliveries", len(*got))
			}
			if res.Reply != nil || (res.Problem != "") != tc.wantProblem {
				t.Fatalf("result %+v; want a problem: %v", res, tc.wantProblem)
			}
		})
	}
}

// In AWS a webhook never reaches loopback, link-local (the metadata service) or private addresses: checked
// where the connection is made, so a public-looking name that resolves to one is refused too.
func TestWebhooksCannotReachPrivateAddresses(t *testing.T) {
	srv, got := merchant(t, 200, "")
	c := relay.New(false)
	for _, u := range []string{
		strings.Replace(srv.URL, "http://", "https://", 1), // loopback (the test server)
		"https://10.0.0.8/hook", "https://172.16.5.4/hook", "https://192.168.1.1/hook",
		"https://169.254.169.254/latest/meta-data/", "https://[::1]/hook", "https://[fd00::1]/hook",
		"https://100.64.0.1/hook", "https://0.0.0.0/hook", "https://localhost/hook",
		"https://[::ffff:127.0.0.1]/hook",    // IPv4-mapped loopback
		"https://[64:ff9b::a9fe:a9fe]/hook",  // NAT64 of the metadata service
		"https://[2002:a00:8::1]/hook",       // 6to4 of 10.0.0.8
		"https://[2001:0:4136:e378::1]/hook", // Teredo
		"https://[::a00:8]/hook",             // IPv4-compatible 10.0.0.8
		"https://198.18.0.1/hook", "https://240.0.0.1/hook", "https://192.0.0.8/hook",
		"https://[fec0::1]/hook", "https://224.0.0.1/hook", "https://[ff02::1]/hook",
	} {
		_, err := c.Deliver(context.Background(), u, secret, delivery)
		if !errors.Is(err, relay.ErrRefusedAddress) {
			t.Errorf("%s: want ErrRefusedAddress, got %v", u, err)
		}
		if err := relay.CheckURL(context.Background(), u, false); !errors.Is(err, relay.ErrRefusedAddress) {
			t.Errorf("CheckURL(%s): want ErrRefusedAddress, got %v", u, err)
		}
	}
	if _, err := c.Deliver(context.Background(), srv.URL, secret, delivery); !errors.Is(err, relay.ErrBadURL) {
		t.Errorf("http webhook in AWS: want ErrBadURL, got %v", err)
	}
	if len(*got) != 0 {
		t.Fatalf("a refused webhook was reached %d times", len(*got))
	}
	// Ranges that embed an IPv4 address are judged by it: NAT64 and 6to4 of a public address are public.
	for _, ok := range []string{"https://93.184.215.14/hook", "https://[64:ff9b::5db8:d70e]/hook", "https://[2002:5db8:d70e::1]/hook"} {
		if err := relay.CheckURL(context.Background(), ok, false); err != nil {
			t.Errorf("CheckURL(%s): %v", ok, err)
		}
	}
	for _, bad := range []string{"ftp://example.com/", "https://user:pw@example.com/", "/relative", "https://"} {
		if err := relay.CheckURL(context.Background(), bad, false); !errors.Is(err, relay.ErrBadURL) {
			t.Errorf("CheckURL(%q): %v", bad, err)
		}
	}
}

func TestRelaySignatureIsComparedInConstantTime(t *testing.T) {
	testenv.AssertConstantTimeComparisons(t, ".", "Verify")
}
