package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFaultBusyAppliesToItsEndpointOnly(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	e.sb.SetFault("api_create_preauthcode", Fault{BusyRate: 1})
	body := map[string]string{"component_appid": testComponent}
	a := e.call(t, "/cgi-bin/component/api_create_preauthcode", tokenQuery(ctok), body)
	wantCode(t, "busy", a, CodeSystemBusy)
	if !strings.HasPrefix(a.str("errmsg"), "system error") {
		t.Errorf("errmsg %q", a.str("errmsg"))
	}
	wantCode(t, "other endpoint", e.call(t, "/cgi-bin/component/api_get_authorizer_list", tokenQuery(ctok),
		map[string]any{"component_appid": testComponent, "count": 10}), 0)

	e.sb.SetFault("api_create_preauthcode", Fault{})
	wantCode(t, "fault removed", e.call(t, "/cgi-bin/component/api_create_preauthcode", tokenQuery(ctok), body), 0)

	e.sb.SetFault("*", Fault{BusyRate: 1})
	wantCode(t, "wildcard", e.call(t, "/cgi-bin/component/api_create_preauthcode", tokenQuery(ctok), body), CodeSystemBusy)
	e.sb.SetFault("api_create_preauthcode", Fault{ErrCode: CodeTooFrequent, ErrRate: 1})
	wantCode(t, "endpoint fault wins over wildcard", e.call(t, "/cgi-bin/component/api_create_preauthcode", tokenQuery(ctok), body), CodeTooFrequent)
}

func TestFaultBusyRateIsAProbability(t *testing.T) {
	e := newEnv(t)
	e.sb.SetFault("api_start_push_ticket", Fault{BusyRate: 0.5})
	busy := 0
	const n = 400
	for range n {
		a := e.call(t, "/cgi-bin/component/api_start_push_ticket", nil, map[string]string{"component_appid": testComponent, "component_secret": "wrong"})
		if a.code() == CodeSystemBusy {
			busy++
		} else if a.code() != CodeInvalidAppSecret {
			t.Fatalf("unexpected answer %v", a)
		}
	}
	// Binomial(400, 0.5): outside [120, 280] has probability below 1e-18.
	if busy < 120 || busy > 280 {
		t.Fatalf("%d of %d calls busy at rate 0.5", busy, n)
	}
}

func TestFaultLatencyHonouredAndCancellable(t *testing.T) {
	e := newEnv(t)
	e.sb.SetFault("api_start_push_ticket", Fault{Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.callCtx(t, ctx, "/cgi-bin/component/api_start_push_ticket", nil,
			map[string]string{"component_appid": testComponent, "component_secret": testSecret})
		done <- err
	}()
	waitFor(t, func() bool { return e.sb.Calls("api_start_push_ticket") == 1 }) // the request is held
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled call: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("cancelling the client did not release the held request")
	}
	if len(e.sb.Pushes()) != 0 {
		t.Error("the abandoned call still ran the endpoint")
	}

	// A short latency is served, then the endpoint runs.
	e.sb.SetFault("api_start_push_ticket", Fault{Latency: 20 * time.Millisecond})
	start := time.Now()
	a := e.call(t, "/cgi-bin/component/api_start_push_ticket", nil, map[string]string{"component_appid": testComponent, "component_secret": testSecret})
	wantCode(t, "after latency", a, 0)
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("latency not applied")
	}
	e.rc.next(t)
}

func TestFaultTimeoutHoldsUntilClientGivesUp(t *testing.T) {
	e := newEnv(t)
	e.sb.SetFault("api_component_token", Fault{TimeoutRate: 1}) // default hold 30s
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.callCtx(t, ctx, "/cgi-bin/component/api_component_token", nil, map[string]string{"component_appid": testComponent})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held call: %v", err)
	}
	// After a short hold the call is served normally.
	e.sb.SetFault("api_component_token", Fault{TimeoutRate: 1, TimeoutHold: time.Millisecond})
	wantCode(t, "after hold", e.call(t, "/cgi-bin/component/api_component_token", nil, map[string]string{"component_appid": ""}), CodeAppIDMissing)
}

func TestCloseReleasesHeldRequests(t *testing.T) {
	e := newEnv(t)
	e.sb.SetFault("*", Fault{Latency: time.Hour})
	done := make(chan answer, 1)
	go func() {
		a, _ := e.callCtx(t, context.Background(), "/cgi-bin/component/api_start_push_ticket", nil, map[string]string{})
		done <- a
	}()
	waitFor(t, func() bool { return e.sb.Calls("api_start_push_ticket") == 1 }) // the request is held
	closed := make(chan error, 1)
	go func() { closed <- e.sb.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Close hung on a held request")
	}
	if a := <-done; a.code() != CodeSystemBusy {
		t.Errorf("held request answered %v", a)
	}
}

func TestFaultDailyQuota(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	e.sb.SetFault("api_create_preauthcode", Fault{DailyQuota: 3})
	body := map[string]string{"component_appid": testComponent}
	for i := range 3 {
		wantCode(t, fmt.Sprintf("call %d", i+1), e.call(t, "/cgi-bin/component/api_create_preauthcode", tokenQuery(ctok), body), 0)
	}
	a := e.call(t, "/cgi-bin/component/api_create_preauthcode", tokenQuery(ctok), body)
	wantCode(t, "call 4", a, CodeDailyQuota)
	if !strings.HasPrefix(a.str("errmsg"), "reach max api daily quota limit") {
		t.Errorf("errmsg %q", a.str("errmsg"))
	}
	e.sb.ResetCalls() // a new day
	wantCode(t, "after reset", e.call(t, "/cgi-bin/component/api_create_preauthcode", tokenQuery(ctok), body), 0)
}

func TestCallCounters(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	for range 3 {
		e.preAuthCode(t, ctok)
	}
	e.call(t, "/cgi-bin/component/api_create_preauthcode", nil, map[string]string{}) // refused calls count too
	if got := e.sb.Calls("api_create_preauthcode"); got != 4 {
		t.Errorf("api_create_preauthcode calls %d, want 4", got)
	}
	if got := e.sb.Calls("api_component_token"); got != 1 {
		t.Errorf("api_component_token calls %d, want 1", got)
	}
	if got := e.sb.Calls("api_query_auth"); got != 0 {
		t.Errorf("api_query_auth calls %d, want 0", got)
	}
	e.sb.ResetCalls()
	if got := e.sb.Calls("api_create_preauthcode"); got != 0 {
		t.Errorf("after ResetCalls: %d", got)
	}
}

func TestRequestValidation(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	path := "/cgi-bin/component/api_create_preauthcode"

	a := e.call(t, path, tokenQuery(ctok), []byte(`{"component_appid":`))
	wantCode(t, "malformed JSON", a, CodeDataFormat)
	wantCode(t, "wrong JSON type", e.call(t, path, tokenQuery(ctok), []byte(`{"component_appid":12}`)), CodeDataFormat)
	wantCode(t, "empty body", e.call(t, path, tokenQuery(ctok), []byte{}), CodeEmptyPostData)
	wantCode(t, "GET on POST endpoint", e.call(t, path, tokenQuery(ctok), nil), CodeRequirePOST)

	big := bytes.Repeat([]byte("x"), maxBody+1)
	a = e.call(t, path, tokenQuery(ctok), big)
	if a["_status"] != float64(http.StatusRequestEntityTooLarge) {
		t.Errorf("1 MB body: %v", a)
	}
	a = e.call(t, "/cgi-bin/component/no_such_api", nil, nil)
	if a["_status"] != float64(http.StatusNotFound) || a.code() == 0 {
		t.Errorf("unknown path: %v", a)
	}
	if n := len(e.sb.Pushes()); n != 1 { // only the ticket from componentToken
		t.Errorf("bad requests caused pushes: %d", n)
	}
}

func TestConcurrentCalls(t *testing.T) {
	e := newEnv(t)
	ctok := e.componentToken(t)
	code, _ := e.authorize(t, ctok, mp1)
	refresh := e.queryAuth(t, ctok, code).str("authorizer_refresh_token")
	ticket := e.ticket(t)
	e.sb.ResetCalls()

	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i := range n {
		wg.Go(func() {
			var path, body string
			switch i % 4 {
			case 0:
				path, body = "/cgi-bin/component/api_create_preauthcode?component_access_token="+url.QueryEscape(ctok),
					`{"component_appid":"`+testComponent+`"}`
			case 1:
				path, body = "/cgi-bin/component/api_authorizer_token?component_access_token="+url.QueryEscape(ctok),
					`{"component_appid":"`+testComponent+`","authorizer_appid":"`+mp1+`","authorizer_refresh_token":"`+refresh+`"}`
			case 2:
				path, body = "/cgi-bin/component/api_component_token",
					`{"component_appid":"`+testComponent+`","component_appsecret":"`+testSecret+`","component_verify_ticket":"`+ticket+`"}`
			case 3:
				path, body = "/cgi-bin/component/api_get_authorizer_info?component_access_token="+url.QueryEscape(ctok),
					`{"component_appid":"`+testComponent+`","authorizer_appid":"`+mp1+`"}`
			}
			resp, err := client.Post(e.base+path, "application/json", strings.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			// ctok stays valid throughout: new component tokens only supersede
			// it, and the clock does not move.
			if resp.StatusCode != 200 || bytes.Contains(raw, []byte(`"errcode":`)) && !bytes.Contains(raw, []byte(`"errcode":0`)) {
				errs <- fmt.Errorf("%s: HTTP %d %s", path, resp.StatusCode, raw)
			}
		})
	}
	wg.Wait()
	client.CloseIdleConnections()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for _, ep := range []string{"api_create_preauthcode", "api_authorizer_token", "api_component_token", "api_get_authorizer_info"} {
		total += e.sb.Calls(ep)
	}
	if total != n || len(e.sb.AuthorizerTokenIssues(mp1)) != n/4 {
		t.Errorf("counted %d calls and %d token issues, want %d and %d", total, len(e.sb.AuthorizerTokenIssues(mp1)), n, n/4)
	}
}
