package campaigns

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/audits"
	"github.com/wxtpp/platform/shared/table"
)

// Records, over the shared key schema:
//
//	CAMPAIGN#<id> / CAMPAIGN     the campaign: its spec (without targets), state, counts
//	CAMPAIGN#<id> / TARGETS#<n>  the resolved targets, in the order they are fanned out, in chunks
//	CAMPAIGN#<id> / APP#<appid>  one mini program's progress: state, lease, audit id, error
//	QUOTA#AUDIT / QUOTA          the provider's audit quota as last seen (shared by campaigns)
//
// Apps and campaigns that need looking at later carry DueShard "C<n>" and DueAt on the due index, which the
// sweeper reads (the refresher reads the "S<n>" shards).

// Campaign states.
const (
	CampaignFanningOut = "fanning_out"
	CampaignRunning    = "running"
	CampaignFinished   = "finished"         // every app released, failed or blocked
	CampaignAwaiting   = "awaiting_release" // every app settled, some approved or gray: the operator releases
	CampaignRejected   = "rejected"         // the job was invalid; nothing was committed
)

// App states. An app moves pending -> committing -> submitting -> auditing -> releasing -> released; it may
// stop at approved (manual release) or gray (gray release), or end failed or blocked.
const (
	StatePending    = "pending"
	StateCommitting = "committing"
	StateSubmitting = "submitting"
	StateAuditing   = "auditing"
	StateReleasing  = "releasing"
	StateApproved   = "approved"
	StateGray       = "gray"
	StateReleased   = "released"
	StateFailed     = "failed"
	StateBlocked    = "blocked" // the merchant must authorize again (61023, 61003, permission set 18 missing)
)

// States lists the app states in the order a status display shows them.
var States = []string{StatePending, StateCommitting, StateSubmitting, StateAuditing, StateReleasing, StateApproved,
	StateGray, StateReleased, StateFailed, StateBlocked}

// Final reports whether an app in state s is done (nothing more happens without an operator).
func Final(s string) bool { return s == StateReleased || s == StateFailed || s == StateBlocked }

// Campaign is the campaign record.
type Campaign struct {
	ID        string         `dynamodbav:"CampaignID"`
	State     string         `dynamodbav:"State"`
	Reason    string         `dynamodbav:"Reason,omitempty"` // why it was rejected
	SpecJSON  string         `dynamodbav:"Spec,omitempty"`   // the job without its targets
	SpecHash  string         `dynamodbav:"SpecHash,omitempty"`
	Total     int            `dynamodbav:"Total"`
	FannedOut int            `dynamodbav:"FannedOut"`
	Counts    map[string]int `dynamodbav:"Counts,omitempty"` // by state, as the sweeper last counted
	CountedAt int64          `dynamodbav:"CountedAt,omitempty"`
	CreatedAt int64          `dynamodbav:"CreatedAt"` // unix ms
	UpdatedAt int64          `dynamodbav:"UpdatedAt"`
	DoneAt    int64          `dynamodbav:"DoneAt,omitempty"`
	// Gen grows with every operator job (retry, release), so a count read before one cannot close the campaign.
	Gen      int64  `dynamodbav:"Gen"`
	DueShard string `dynamodbav:"DueShard,omitempty"` // on the due index while not settled: the sweeper counts it
	DueAt    int64  `dynamodbav:"DueAt,omitempty"`
}

// Spec decodes the campaign's spec (without targets).
func (c Campaign) Spec() (Spec, error) {
	var s Spec
	if err := json.Unmarshal([]byte(c.SpecJSON), &s); err != nil {
		return Spec{}, fmt.Errorf("decode spec of campaign %s: %w", c.ID, err)
	}
	return s, nil
}

// App is one mini program's progress in a campaign.
type App struct {
	CampaignID string `dynamodbav:"CampaignID"`
	AppID      string `dynamodbav:"AppID"`
	Tenant     string `dynamodbav:"Tenant,omitempty"`
	State      string `dynamodbav:"State"`
	// Version grows with every write: taking the app is conditional on it.
	Version int64 `dynamodbav:"Version"`
	// Owner holds the app until LeaseUntil (unix ms) while it calls WeChat.
	Owner      string `dynamodbav:"Owner,omitempty"`
	LeaseUntil int64  `dynamodbav:"LeaseUntil,omitempty"`
	// Tried (unix ms) says the state's WeChat action (commit, submit_audit, release) may have been sent and its
	// answer is not known: whoever continues asks WeChat what happened before acting again.
	Tried       int64  `dynamodbav:"Tried,omitempty"`
	Failures    int    `dynamodbav:"Failures,omitempty"` // transient failures of the current step
	PrivacySet  bool   `dynamodbav:"PrivacySet,omitempty"`
	SetupDone   bool   `dynamodbav:"SetupDone,omitempty"`   // domains and testers
	FullRelease bool   `dynamodbav:"FullRelease,omitempty"` // the operator asked for the full release (manual, gray)
	AuditID     int64  `dynamodbav:"AuditID,omitempty"`
	CommittedAt int64  `dynamodbav:"CommittedAt,omitempty"` // unix s
	SubmittedAt int64  `dynamodbav:"SubmittedAt,omitempty"`
	ReleasedAt  int64  `dynamodbav:"ReleasedAt,omitempty"`
	Note        string `dynamodbav:"Note,omitempty"`       // what it waits for
	FailedStep  string `dynamodbav:"FailedStep,omitempty"` // the state it failed in: where a retry resumes
	ErrCode     int    `dynamodbav:"ErrCode,omitempty"`
	ErrMsg      string `dynamodbav:"ErrMsg,omitempty"`
	UpdatedAt   int64  `dynamodbav:"UpdatedAt"`
	DueShard    string `dynamodbav:"DueShard,omitempty"`
	DueAt       int64  `dynamodbav:"DueAt,omitempty"` // unix s: when the sweeper looks at it if nothing happened
}

func campaignKey(id string) table.Key { return table.Key{PK: "CAMPAIGN#" + id, SK: "CAMPAIGN"} }
func targetsKey(id string, chunk int) table.Key {
	return table.Key{PK: "CAMPAIGN#" + id, SK: fmt.Sprintf("TARGETS#%04d", chunk)}
}
func appKey(id, appid string) table.Key {
	return table.Key{PK: "CAMPAIGN#" + id, SK: "APP#" + appid}
}

// dueShards spreads campaign work over the due index's partitions.
const dueShards = 4

func dueShard(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return "C" + strconv.Itoa(int(h.Sum32()%dueShards))
}

// Store reads and writes campaign records.
type Store struct {
	T   *table.Table
	Now func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Campaign reads a campaign, or table.ErrNotFound.
func (s *Store) Campaign(ctx context.Context, id string) (Campaign, error) {
	var c Campaign
	if err := s.T.Get(ctx, campaignKey(id), &c); err != nil {
		return Campaign{}, fmt.Errorf("read campaign %s: %w", id, err)
	}
	return c, nil
}

// App reads one app of a campaign, or table.ErrNotFound.
func (s *Store) App(ctx context.Context, id, appid string) (App, error) {
	var a App
	if err := s.T.Get(ctx, appKey(id, appid), &a); err != nil {
		return App{}, fmt.Errorf("read %s of campaign %s: %w", appid, id, err)
	}
	return a, nil
}

// Apps reads every app of a campaign, ordered by appid.
func (s *Store) Apps(ctx context.Context, id string) ([]App, error) {
	var out []App
	err := s.T.QueryPrefix(ctx, campaignKey(id).PK, "APP#", func(it map[string]types.AttributeValue) error {
		var a App
		if err := attributevalue.UnmarshalMap(it, &a); err != nil {
			return fmt.Errorf("decode app: %w", err)
		}
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list apps of campaign %s: %w", id, err)
	}
	return out, nil
}

// AppAndAudit reads an app and its latest audit (nil if none) in one request: what an audit event's job
// needs.
func (s *Store) AppAndAudit(ctx context.Context, id, appid string) (App, *audits.Latest, error) {
	ak, lk := appKey(id, appid), audits.LatestKey(appid)
	out, err := s.T.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
		s.T.Name: {Keys: []map[string]types.AttributeValue{ak.AV(), lk.AV()}, ConsistentRead: aws.Bool(true)},
	}})
	if err != nil {
		return App{}, nil, fmt.Errorf("read %s of campaign %s: %w", appid, id, err)
	}
	if len(out.UnprocessedKeys) > 0 { // throttled: read them one by one
		a, err := s.App(ctx, id, appid)
		return a, nil, err
	}
	var a App
	var l *audits.Latest
	for _, it := range out.Responses[s.T.Name] {
		if str(it["SK"]) == lk.SK {
			l = &audits.Latest{}
			if err := attributevalue.UnmarshalMap(it, l); err != nil {
				return App{}, nil, fmt.Errorf("decode latest audit: %w", err)
			}
		} else if err := attributevalue.UnmarshalMap(it, &a); err != nil {
			return App{}, nil, fmt.Errorf("decode app: %w", err)
		}
	}
	if a.AppID == "" {
		return App{}, nil, fmt.Errorf("read %s of campaign %s: %w", appid, id, table.ErrNotFound)
	}
	return a, l, nil
}

// Count tallies apps by state.
func Count(apps []App) map[string]int {
	n := map[string]int{}
	for _, a := range apps {
		n[a.State]++
	}
	return n
}

// change is one conditional write to an app: what to set and remove, under which condition.
type change struct {
	set    map[string]any
	remove []string
}

func (c *change) Set(name string, v any) *change {
	if c.set == nil {
		c.set = map[string]any{}
	}
	c.set[name] = v
	return c
}

func (c *change) Remove(names ...string) *change {
	c.remove = append(c.remove, names...)
	return c
}

// due puts the app on the due index at t (the sweeper looks at it then), or takes it off for a zero t.
func (c *change) due(appid string, t time.Time) *change {
	if t.IsZero() {
		return c.Remove("DueShard", "DueAt")
	}
	return c.Set("DueShard", dueShard(appid)).Set("DueAt", t.Unix())
}

// write applies ch to the app if cond holds, bumping Version; it returns the app as written. A refused
// condition is an error for which table.Refused is true.
func (s *Store) write(ctx context.Context, id, appid string, ch *change, cond expression.ConditionBuilder) (App, error) {
	upd := expression.Set(expression.Name("UpdatedAt"), expression.Value(s.now().UnixMilli())).
		Add(expression.Name("Version"), expression.Value(1))
	for k, v := range ch.set {
		upd = upd.Set(expression.Name(k), expression.Value(v))
	}
	for _, k := range ch.remove {
		if _, set := ch.set[k]; !set {
			upd = upd.Remove(expression.Name(k))
		}
	}
	out, err := s.T.Update(ctx, appKey(id, appid), upd, &cond, types.ReturnValueAllNew)
	if err != nil {
		return App{}, err
	}
	var a App
	if err := attributevalue.UnmarshalMap(out, &a); err != nil {
		return App{}, fmt.Errorf("decode app: %w", err)
	}
	return a, nil
}
