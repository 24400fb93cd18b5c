package messages

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxtpp/platform/shared/table"
)

// De-duplication. WeChat delivers a push up to three more times when it gets no answer within 5 s, to any
// instance. Each push is keyed as the addendum says (messages: appid + MsgId + FromUserName, since MsgIds
// collide across fans; events: appid + FromUserName + CreateTime + Event + EventKey, plus a trace_id when
// there is one), and a push that does something takes a marker item with that key with a conditional write.
// The holder does the work and stores the answer on the marker; a repeat gets that same answer. A holder
// that fails deletes its marker, so WeChat's retry is processed afresh; one that dies leaves a marker that
// lapses at its deadline. A push answered from its content alone writes its answer in one conditional write;
// one that causes nothing (no webhook) writes nothing.

// Key is a push's de-duplication key; it also names the relay delivery (delivery_id).
func Key(appid string, m Message) string {
	var raw string
	if m.IsEvent() {
		trace, _ := m.Fields["trace_id"].(string)
		raw = strings.Join([]string{"e", appid, m.FromUserName, strconv.FormatInt(m.CreateTime, 10), m.Event, m.EventKey, trace}, "\x00")
	} else {
		id := m.MsgID
		if id == "" { // messages without MsgId (rare): fall back to the event key's shape
			id = "t" + strconv.FormatInt(m.CreateTime, 10) + m.MsgType
		}
		raw = strings.Join([]string{"m", appid, id, m.FromUserName}, "\x00")
	}
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:16])
}

// markerTTL keeps a marker well past WeChat's last retry (about 15 s after the first delivery).
const markerTTL = 30 * time.Minute

// Marker states.
const (
	stateProcessing = "processing"
	stateDone       = "done"
)

// marker is the item of one push.
type marker struct {
	State string `dynamodbav:"State"`
	Owner string `dynamodbav:"Owner"`
	Until int64  `dynamodbav:"Until"` // unix ms: the holder's deadline
	// The answer given: a passive reply's plaintext, or Empty (an empty body), or neither ("success").
	Reply string `dynamodbav:"Reply,omitempty"`
	Empty bool   `dynamodbav:"Empty,omitempty"`
}

// answer is what the platform answers a push with.
type answer struct {
	reply []byte // a passive reply's plaintext, encrypted when sent; nil: no reply
	empty bool   // an empty body instead of "success" (全网发布's customer-service case asks for it)
}

func markerKey(appid, key string) table.Key {
	return table.Key{PK: "MSG#" + appid + "#" + key, SK: "MSG"}
}

type markers struct {
	t   *table.Table
	now func() time.Time
}

// take claims the marker for owner until the given time. It returns the marker as it is when refused.
func (ms markers) take(ctx context.Context, k table.Key, owner string, until time.Time) (marker, bool, error) {
	now := ms.now()
	cond := expression.AttributeNotExists(expression.Name("PK")).
		Or(expression.Name("State").Equal(expression.Value(stateProcessing)).
			And(expression.Name("Until").LessThan(expression.Value(now.UnixMilli()))))
	upd := expression.Set(expression.Name("State"), expression.Value(stateProcessing)).
		Set(expression.Name("Owner"), expression.Value(owner)).
		Set(expression.Name("Until"), expression.Value(until.UnixMilli())).
		Set(expression.Name("PurgeAt"), expression.Value(now.Add(markerTTL).Unix()))
	_, err := ms.t.Update(ctx, k, upd, &cond, types.ReturnValueNone)
	if table.Refused(err) {
		var m marker
		if old := table.RefusedItem(err); old != nil {
			if err := attributevalue.UnmarshalMap(old, &m); err != nil {
				return marker{}, false, fmt.Errorf("decode message marker: %w", err)
			}
		}
		// Our own write, applied, whose answer was lost: the SDK's retry found it.
		return m, m.State == stateProcessing && m.Owner == owner, nil
	}
	if err != nil {
		return marker{}, false, fmt.Errorf("take message marker: %w", err)
	}
	return marker{State: stateProcessing, Owner: owner, Until: until.UnixMilli()}, true, nil
}

// putDone records a push answered from its content alone, unless a delivery of it was answered before: the
// answer every delivery gives, and whether this was the first.
func (ms markers) putDone(ctx context.Context, k table.Key, a answer) (answer, bool, error) {
	now := ms.now()
	cond := expression.AttributeNotExists(expression.Name("PK"))
	upd := expression.Set(expression.Name("State"), expression.Value(stateDone)).
		Set(expression.Name("PurgeAt"), expression.Value(now.Add(markerTTL).Unix()))
	if a.reply != nil {
		upd = upd.Set(expression.Name("Reply"), expression.Value(string(a.reply)))
	}
	if a.empty {
		upd = upd.Set(expression.Name("Empty"), expression.Value(true))
	}
	_, err := ms.t.Update(ctx, k, upd, &cond, types.ReturnValueNone)
	if table.Refused(err) {
		var m marker
		if old := table.RefusedItem(err); old != nil {
			if err := attributevalue.UnmarshalMap(old, &m); err != nil {
				return answer{}, false, fmt.Errorf("decode message marker: %w", err)
			}
		}
		if m.State == stateDone {
			return m.answer(), false, nil
		}
		return a, false, nil
	}
	if err != nil {
		return answer{}, false, fmt.Errorf("record message answer: %w", err)
	}
	return a, true, nil
}

// done stores the answer on the marker owner holds.
func (ms markers) done(ctx context.Context, k table.Key, owner string, a answer) error {
	cond := expression.Name("Owner").Equal(expression.Value(owner))
	upd := expression.Set(expression.Name("State"), expression.Value(stateDone))
	if a.reply != nil {
		upd = upd.Set(expression.Name("Reply"), expression.Value(string(a.reply)))
	}
	if a.empty {
		upd = upd.Set(expression.Name("Empty"), expression.Value(true))
	}
	if _, err := ms.t.Update(ctx, k, upd, &cond, types.ReturnValueNone); err != nil {
		return fmt.Errorf("store message answer: %w", err)
	}
	return nil
}

// drop deletes the marker owner holds after a failure, so WeChat's retry is processed again.
func (ms markers) drop(ctx context.Context, k table.Key, owner string) error {
	cond := expression.Name("Owner").Equal(expression.Value(owner)).
		And(expression.Name("State").Equal(expression.Value(stateProcessing)))
	if err := ms.t.Delete(ctx, k, &cond); err != nil && !table.Refused(err) {
		return fmt.Errorf("drop message marker: %w", err)
	}
	return nil
}

func (ms markers) get(ctx context.Context, k table.Key) (marker, error) {
	var m marker
	if err := ms.t.Get(ctx, k, &m); err != nil {
		return marker{}, err
	}
	return m, nil
}

func (m marker) answer() answer {
	a := answer{empty: m.Empty}
	if m.Reply != "" {
		a.reply = []byte(m.Reply)
	}
	return a
}
