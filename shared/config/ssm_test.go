package config_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/wxtpp/platform/shared/config"
)

// fakeSSM speaks just enough of SSM's JSON protocol (AmazonSSM.GetParameters) on 127.0.0.1 to check how
// SSMFetcher batches and decodes.
type fakeSSM struct {
	mu      sync.Mutex
	batches [][]string
	decrypt []bool
	params  map[string]string
	fail    bool
}

func newFakeSSM(t *testing.T, f *fakeSSM) *ssm.Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("X-Amz-Target"); got != "AmazonSSM.GetParameters" {
			t.Errorf("X-Amz-Target %q", got)
		}
		var in struct {
			Names          []string
			WithDecryption bool
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			t.Errorf("request body: %v", err)
		}
		f.mu.Lock()
		f.batches = append(f.batches, in.Names)
		f.decrypt = append(f.decrypt, in.WithDecryption)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if f.fail {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"__type":"AccessDeniedException","message":"not authorized"}`)
			return
		}
		type param struct{ Name, Value, Type string }
		out := struct {
			Parameters        []param
			InvalidParameters []string
		}{Parameters: []param{}, InvalidParameters: []string{}}
		for _, n := range in.Names {
			if v, ok := f.params[n]; ok {
				out.Parameters = append(out.Parameters, param{n, v, "SecureString"})
			} else {
				out.InvalidParameters = append(out.InvalidParameters, n)
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return ssm.New(ssm.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      aws.AnonymousCredentials{},
		RetryMaxAttempts: 1,
		HTTPClient:       srv.Client(),
	})
}

func TestSSMFetcherBatchesAndDecrypts(t *testing.T) {
	f := &fakeSSM{params: map[string]string{}}
	var names []string
	for i := range 23 {
		n := fmt.Sprintf("/wxtpp/test/p%02d", i)
		names = append(names, n)
		if i != 11 { // one absent parameter
			f.params[n] = "v" + n
		}
	}
	got, err := config.SSMFetcher{Client: newFakeSSM(t, f)}.GetParameters(context.Background(), names)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.batches) != 3 || len(f.batches[0]) != 10 || len(f.batches[1]) != 10 || len(f.batches[2]) != 3 {
		t.Fatalf("batches %v, want 10+10+3 names", f.batches)
	}
	for i, d := range f.decrypt {
		if !d {
			t.Errorf("batch %d sent WithDecryption false", i)
		}
	}
	if !reflect.DeepEqual(got, f.params) {
		t.Errorf("got %v, want %v", got, f.params)
	}
}

func TestSSMFetcherWithLoad(t *testing.T) {
	f := &fakeSSM{params: map[string]string{
		"/wxtpp/test/component_secret": secComponent,
		"/wxtpp/test/token":            secToken,
		"/wxtpp/test/encoding_aes_key": secAESKey,
	}}
	c, err := config.Load(context.Background(), plain.with("SECRETS_PARAMETER_PREFIX", "/wxtpp/test/").get,
		config.SSMFetcher{Client: newFakeSSM(t, f)})
	if err != nil {
		t.Fatal(err)
	}
	want := config.Secrets{ComponentSecret: secComponent, Token: secToken, EncodingAESKey: secAESKey}
	if c.Secrets != want {
		t.Error("secrets not loaded through SSMFetcher")
	}
}

func TestSSMFetcherError(t *testing.T) {
	f := &fakeSSM{fail: true}
	_, err := config.SSMFetcher{Client: newFakeSSM(t, f)}.GetParameters(context.Background(), []string{"/wxtpp/test/token"})
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("err = %v, want the SSM error", err)
	}
}

func TestSSMFetcherWithoutClient(t *testing.T) {
	if _, err := (config.SSMFetcher{}).GetParameters(context.Background(), []string{"x"}); err == nil {
		t.Fatal("nil client: want an error, not a panic")
	}
}
