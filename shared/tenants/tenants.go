// Package tenants keeps the service provider's merchants (tenants) in the platform's table. Only the
// provider creates them (the operator CLI, infra/cmd/wxtpp); authorization links are signed for one tenant,
// and an account belongs to the tenant whose link authorized it.
package tenants

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/table"
)

// ErrNotFound means no such tenant.
var ErrNotFound = errors.New("no such tenant")

var idRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ValidID reports whether id can name a tenant: 1 to 64 letters, digits, _ . or -.
func ValidID(id string) bool { return idRE.MatchString(id) }

// maxName bounds a tenant's display name (characters).
const maxName = 128

// Tenant is one merchant of the service provider.
type Tenant struct {
	ID        string `dynamodbav:"TenantID" json:"id"`
	Name      string `dynamodbav:"Name,omitempty" json:"name,omitempty"`
	CreatedAt int64  `dynamodbav:"CreatedAt" json:"created_at"` // unix ms
	UpdatedAt int64  `dynamodbav:"UpdatedAt" json:"updated_at"` // unix ms
}

func key(id string) table.Key { return table.Key{PK: "TENANT#" + id, SK: "TENANT"} }

// Store reads and writes tenants.
type Store struct {
	t   *table.Table
	Now func() time.Time
}

// New returns a Store on t.
func New(t *table.Table) *Store { return &Store{t: t, Now: time.Now} }

// Set creates tenant id, or updates it. A nil name leaves the name as it is. It reports whether the tenant
// was created by this call.
func (s *Store) Set(ctx context.Context, id string, name *string) (Tenant, bool, error) {
	if !ValidID(id) {
		return Tenant{}, false, fmt.Errorf("tenant id %q: use 1 to 64 letters, digits, _ . or -", id)
	}
	if name != nil && len([]rune(*name)) > maxName {
		return Tenant{}, false, fmt.Errorf("tenant name: at most %d characters", maxName)
	}
	now := s.Now().UnixMilli()
	upd := expression.Set(expression.Name("TenantID"), expression.Value(id)).
		Set(expression.Name("CreatedAt"), expression.IfNotExists(expression.Name("CreatedAt"), expression.Value(now))).
		Set(expression.Name("UpdatedAt"), expression.Value(now))
	if name != nil {
		upd = upd.Set(expression.Name("Name"), expression.Value(*name))
	}
	out, err := s.t.Update(ctx, key(id), upd, nil, types.ReturnValueAllNew)
	if err != nil {
		return Tenant{}, false, fmt.Errorf("store tenant %s: %w", id, err)
	}
	var t Tenant
	if err := attributevalue.UnmarshalMap(out, &t); err != nil {
		return Tenant{}, false, fmt.Errorf("decode tenant %s: %w", id, err)
	}
	return t, t.CreatedAt == now, nil
}

// Get reads tenant id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Tenant, error) {
	if !ValidID(id) {
		return Tenant{}, fmt.Errorf("tenant %q: %w", id, ErrNotFound)
	}
	var t Tenant
	err := s.t.Get(ctx, key(id), &t)
	if errors.Is(err, table.ErrNotFound) {
		return Tenant{}, fmt.Errorf("tenant %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("read tenant %s: %w", id, err)
	}
	return t, nil
}
