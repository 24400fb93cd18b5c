package tenants_test

import (
	"context"
	"slices"
	"testing"

	"github.com/wxtpp/platform/infra/testenv"
	"github.com/wxtpp/platform/shared/table"
	"github.com/wxtpp/platform/shared/tenants"
)

func TestOriginNormalizesAndRefuses(t *testing.T) {
	good := map[string]string{
		"https://Shop.Example.com":      "https://shop.example.com",
		"https://shop.example.com/":     "https://shop.example.com",
		"https://shop.example.com:443":  "https://shop.example.com",
		"https://shop.example.com:8443": "https://shop.example.com:8443",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
		"http://localhost:3000":         "http://localhost:3000",
		"http://[::1]:3000":             "http://[::1]:3000",
	}
	for in, want := range good {
		if got, err := tenants.Origin(in); err != nil || got != want {
			t.Errorf("Origin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{
		"", "shop.example.com", "http://shop.example.com", "https://shop.example.com/path", "https://shop.example.com?x=1",
		"https://shop.example.com#f", "https://user@shop.example.com", "ftp://shop.example.com", "javascript:alert(1)",
		"http://10.0.0.1", "https://",
	} {
		if got, err := tenants.Origin(bad); err == nil {
			t.Errorf("Origin(%q) = %q, want an error", bad, got)
		}
	}
	if got := tenants.OriginOf("https://SHOP.example.com:443/a/b?c#d"); got != "https://shop.example.com" {
		t.Errorf("OriginOf = %q", got)
	}
	if got := tenants.OriginOf("/relative"); got != "" {
		t.Errorf("OriginOf(relative) = %q, want empty", got)
	}
}

func TestReturnOriginsAddRemoveAndSecretOnce(t *testing.T) {
	db := testenv.DynamoDB(t)
	store := tenants.New(table.New(db, testenv.Table(t, db)))
	ctx := context.Background()

	r, err := store.Set(ctx, "shop-1", tenants.Changes{AddOrigins: []string{"https://a.example.com", "https://A.example.com/"}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Created || r.NewSecret == "" || r.Tenant.SigningSecret != r.NewSecret {
		t.Fatalf("first origin: created %v, secret generated %v", r.Created, r.NewSecret != "")
	}
	if !slices.Equal(r.Tenant.ReturnOrigins, []string{"https://a.example.com"}) {
		t.Fatalf("origins %v", r.Tenant.ReturnOrigins)
	}
	first := r.NewSecret

	r, err = store.Set(ctx, "shop-1", tenants.Changes{AddOrigins: []string{"https://b.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.NewSecret != "" || r.Tenant.SigningSecret != first {
		t.Fatal("a second origin must keep the secret and not show it again")
	}
	got := slices.Sorted(slices.Values(r.Tenant.ReturnOrigins))
	if !slices.Equal(got, []string{"https://a.example.com", "https://b.example.com"}) {
		t.Fatalf("origins %v", got)
	}

	r, err = store.Set(ctx, "shop-1", tenants.Changes{RemoveOrigins: []string{"https://a.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Tenant.ReturnOrigins, []string{"https://b.example.com"}) {
		t.Fatalf("after removal: %v", r.Tenant.ReturnOrigins)
	}

	before, _ := store.Get(ctx, "shop-1")
	if _, err := store.Set(ctx, "shop-1", tenants.Changes{AddOrigins: []string{"http://shop.example.com"}}); err == nil {
		t.Fatal("a plain-http origin was accepted")
	}
	if _, err := store.Set(ctx, "shop-1", tenants.Changes{AddOrigins: []string{"https://c.example.com"}, RemoveOrigins: []string{"https://c.example.com"}}); err == nil {
		t.Fatal("adding and removing one origin was accepted")
	}
	after, _ := store.Get(ctx, "shop-1")
	if !slices.Equal(before.ReturnOrigins, after.ReturnOrigins) || before.UpdatedAt != after.UpdatedAt {
		t.Fatal("a refused change changed the tenant")
	}
}
