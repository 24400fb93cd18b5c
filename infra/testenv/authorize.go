package testenv

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/sandbox"
	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// AuthorizeAll authorizes accounts in the sandbox and stores each with its tokens, tenant and original id, as
// a completed authorization leaves it (without the pages and pushes: for tests about what comes after).
func AuthorizeAll(t testing.TB, wx *sandbox.Sandbox, api *wxapi.Client, store *tokenstore.Store, componentToken, tenant string, accounts []sandbox.Account) {
	t.Helper()
	ctx := context.Background()
	work := make(chan sandbox.Account)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range 32 {
		wg.Go(func() {
			for acc := range work {
				if err := authorize(ctx, wx, api, store, componentToken, tenant, acc); err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, a := range accounts {
		work <- a
	}
	close(work)
	wg.Wait()
	if first != nil {
		t.Fatalf("authorize the sandbox's accounts: %v", first)
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func authorize(ctx context.Context, wx *sandbox.Sandbox, api *wxapi.Client, store *tokenstore.Store, componentToken, tenant string, acc sandbox.Account) error {
	pre := wx.CreatePreAuthCode()
	code, err := wx.Authorize(ctx, acc.AppID, pre)
	if err != nil {
		return err
	}
	info, err := api.QueryAuth(ctx, componentToken, ComponentAppID, code)
	if err != nil {
		return err
	}
	now := time.Now()
	if _, err := store.PutAuthorization(ctx, tokenstore.Authorization{
		AppID: acc.AppID, Kind: acc.Kind, Info: tokenstore.AccountInfo{NickName: acc.NickName, UserName: acc.UserName}, InfoKnown: true,
		PermissionSets: info.PermissionSets(),
		AccessToken:    info.AccessToken, RefreshToken: info.RefreshToken, AuthCode: code,
		ExpiresAt: now.Add(time.Duration(info.ExpiresIn) * time.Second), At: now,
	}); err != nil {
		return err
	}
	if tenant != "" {
		if _, err := store.BindTenant(ctx, acc.AppID, code, pre, tenant, now); err != nil {
			return err
		}
	}
	return nil
}

// Component stores a fresh ticket from the sandbox and returns the component token source with its first
// token, as the ticket function leaves things once WeChat's first ticket arrived.
func Component(t testing.TB, wx *sandbox.Sandbox, api *wxapi.Client, store *tokenstore.Store) (*credentials.Component, string) {
	t.Helper()
	ctx := context.Background()
	ticket, err := wx.PushTicket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutTicket(ctx, ComponentAppID, ticket, time.Now().Unix()); err != nil {
		t.Fatal(err)
	}
	comp := credentials.NewComponent(store, api, ComponentAppID, ComponentSecret, credentials.Options{})
	tok, err := comp.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return comp, tok
}
