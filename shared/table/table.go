// Package table is the platform's one DynamoDB table: its key schema (PK, SK), its sparse `due` index, its
// TTL attribute (PurgeAt) and the few primitives every record family builds on: a strongly consistent read,
// a conditional update that reports the item a refused write found, and single-use markers.
//
// Each record family lives in the package of its concept (tokens in tokenstore, tenants in tenants, code
// claims and pre_auth codes in authorization) and owns its key prefix:
//
//	COMPONENT#<appid>   component ticket, token, cached pre_auth_codes, rate counters
//	AUTHORIZER#<appid>  an authorized account (tokens, status, tenant) and its history events
//	AUTHCODE#<code>     the claim that coordinates the two deliveries of one authorization code
//	PREAUTH#<code>      which tenant a pre_auth_code was issued to, and whether it was spent
//	TENANT#<id>         a merchant of the service provider
//	ONCE#<id>           single-use markers (state nonces, rate slots)
//	MSG#<appid>#<key>   the de-duplication marker of one message push, with the answer given
//	CUSTOMMSG#<key>     a customer-service message sent once
package table

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ErrNotFound means the item does not exist.
var ErrNotFound = errors.New("not found")

// ErrUsed means a single-use marker was already taken.
var ErrUsed = errors.New("already used")

// Key addresses one item.
type Key struct{ PK, SK string }

// AV is the key as DynamoDB attribute values.
func (k Key) AV() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: k.PK},
		"SK": &types.AttributeValueMemberS{Value: k.SK},
	}
}

func (k Key) String() string { return k.PK + "/" + k.SK }

// Table is the table and its client.
type Table struct {
	DB   *dynamodb.Client
	Name string
}

// New returns the table name on db.
func New(db *dynamodb.Client, name string) *Table { return &Table{DB: db, Name: name} }

// Get reads an item with a strongly consistent read into out, or returns ErrNotFound.
func (t *Table) Get(ctx context.Context, key Key, out any) error {
	resp, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(t.Name), Key: key.AV(), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return err
	}
	if resp.Item == nil {
		return ErrNotFound
	}
	return attributevalue.UnmarshalMap(resp.Item, out)
}

// Update applies upd to key if cond (nil: always). On success it returns the attributes rv asks for; a
// refused condition comes back as an error for which Refused is true, carrying the item as it was.
func (t *Table) Update(ctx context.Context, key Key, upd expression.UpdateBuilder, cond *expression.ConditionBuilder, rv types.ReturnValue) (map[string]types.AttributeValue, error) {
	b := expression.NewBuilder().WithUpdate(upd)
	if cond != nil {
		b = b.WithCondition(*cond)
	}
	expr, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("build expression: %w", err)
	}
	out, err := t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(t.Name),
		Key:                                 key.AV(),
		UpdateExpression:                    expr.Update(),
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValues:                        rv,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		return nil, err
	}
	return out.Attributes, nil
}

// Refused reports whether err is a refused condition.
func Refused(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

// RefusedItem is the item a refused conditional write found (nil if it did not exist).
func RefusedItem(err error) map[string]types.AttributeValue {
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return cf.Item
	}
	return nil
}

// Query runs a query over every page and decodes each item with decode.
func (t *Table) Query(ctx context.Context, in *dynamodb.QueryInput, decode func(map[string]types.AttributeValue) error) error {
	in.TableName = aws.String(t.Name)
	p := dynamodb.NewQueryPaginator(t.DB, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, it := range page.Items {
			if err := decode(it); err != nil {
				return err
			}
		}
	}
	return nil
}

// QueryPrefix reads, with a strongly consistent read, every item of partition pk whose SK begins with
// prefix, in SK order, and decodes each with decode.
func (t *Table) QueryPrefix(ctx context.Context, pk, prefix string, decode func(map[string]types.AttributeValue) error) error {
	keyCond := expression.Key("PK").Equal(expression.Value(pk)).And(expression.Key("SK").BeginsWith(prefix))
	expr, err := expression.NewBuilder().WithKeyCondition(keyCond).Build()
	if err != nil {
		return fmt.Errorf("build expression: %w", err)
	}
	return t.Query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(),
		ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
	}, decode)
}

// Delete deletes key if cond (nil: always); a refused condition is an error for which Refused is true.
func (t *Table) Delete(ctx context.Context, key Key, cond *expression.ConditionBuilder) error {
	in := &dynamodb.DeleteItemInput{TableName: aws.String(t.Name), Key: key.AV()}
	if cond != nil {
		expr, err := expression.NewBuilder().WithCondition(*cond).Build()
		if err != nil {
			return fmt.Errorf("build expression: %w", err)
		}
		in.ConditionExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues = expr.Condition(), expr.Names(), expr.Values()
	}
	_, err := t.DB.DeleteItem(ctx, in)
	return err
}

// Take deletes the item at key and decodes what it held into out: of concurrent calls exactly one gets it,
// the others (and any call after it) get ErrNotFound. It makes a stored session single-use.
func (t *Table) Take(ctx context.Context, key Key, out any) error {
	resp, err := t.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(t.Name), Key: key.AV(), ReturnValues: types.ReturnValueAllOld,
		ConditionExpression: aws.String("attribute_exists(PK)"),
	})
	if Refused(err) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if err := attributevalue.UnmarshalMap(resp.Attributes, out); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// Put writes a whole item (map or struct), unconditionally.
func (t *Table) Put(ctx context.Context, item any) error {
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return fmt.Errorf("encode item: %w", err)
	}
	_, err = t.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(t.Name), Item: av})
	return err
}

// PutAt writes v (a struct) as the item at key if cond holds (nil: always); a refused condition is an error
// for which Refused is true, carrying the item found.
func (t *Table) PutAt(ctx context.Context, key Key, v any, cond *expression.ConditionBuilder) error {
	av, err := attributevalue.MarshalMap(v)
	if err != nil {
		return fmt.Errorf("encode item: %w", err)
	}
	maps.Copy(av, key.AV())
	in := &dynamodb.PutItemInput{TableName: aws.String(t.Name), Item: av,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}
	if cond != nil {
		expr, err := expression.NewBuilder().WithCondition(*cond).Build()
		if err != nil {
			return fmt.Errorf("build expression: %w", err)
		}
		in.ConditionExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues = expr.Condition(), expr.Names(), expr.Values()
	}
	_, err = t.DB.PutItem(ctx, in)
	return err
}

func onceKey(id string) Key { return Key{PK: "ONCE#" + id, SK: "ONCE"} }

// UseOnce records that id (an auth `state` nonce, a rate slot) has been used: the first call succeeds,
// every later one gets ErrUsed. The marker is purged by TTL after expires.
func (t *Table) UseOnce(ctx context.Context, id string, expires time.Time) error {
	item := onceKey(id).AV()
	item["PurgeAt"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(expires.Unix(), 10)}
	_, err := t.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.Name), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(PK)"),
	})
	if Refused(err) {
		return ErrUsed
	}
	if err != nil {
		return fmt.Errorf("record single use: %w", err)
	}
	return nil
}

// DueIndex is the sparse global secondary index through which the scheduled refresher finds credentials
// that expire soon: DueShard (hash) spreads them over a fixed number of partitions, DueAt (range, unix
// seconds) orders them by expiry. Only authorized accounts carry these attributes; it projects keys only.
const DueIndex = "due"

// Create creates the table with the same keys, index and TTL as template.yaml (for the local stack and
// tests; in AWS the template owns the table) and waits until it is active. An existing table is left alone.
func Create(ctx context.Context, db *dynamodb.Client, name string) error {
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("SK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("DueShard"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("DueAt"), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(DueIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("DueShard"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("DueAt"), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
	})
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	if err := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = time.Second
	}).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		return fmt.Errorf("wait for table %s: %w", name, err)
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String("PurgeAt"),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", name, err)
	}
	return nil
}
