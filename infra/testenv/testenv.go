// Package testenv connects integration tests to the emulators that `make test` starts (DynamoDB Local and the
// SQS emulator, via infra/scripts/with-emulators.sh) and gives each test a fresh table.
//
// Without the emulators (a plain `go test ./...`) integration tests are skipped with a message saying how to
// run them; under `make test` REQUIRE_EMULATORS=1 turns that skip into a failure, so CI can never pass by
// silently skipping them.
package testenv

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wxtpp/platform/shared/platform"
	"github.com/wxtpp/platform/shared/table"
)

func need(t testing.TB, env string) {
	t.Helper()
	if os.Getenv(env) != "" {
		return
	}
	msg := fmt.Sprintf("%s is not set: run integration tests with `make test` (or infra/scripts/with-emulators.sh go test ./...)", env)
	if os.Getenv("REQUIRE_EMULATORS") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// AWSConfig is the SDK's default config, which picks the emulator endpoints up from AWS_ENDPOINT_URL_*.
func AWSConfig(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	return cfg
}

// DynamoDB returns a client for DynamoDB Local.
func DynamoDB(t testing.TB) *dynamodb.Client {
	t.Helper()
	need(t, "AWS_ENDPOINT_URL_DYNAMODB")
	return platform.NewDynamoDB(AWSConfig(t))
}

// SQS returns a client for the SQS emulator.
func SQS(t testing.TB) *sqs.Client {
	t.Helper()
	need(t, "AWS_ENDPOINT_URL_SQS")
	return sqs.NewFromConfig(AWSConfig(t))
}

var tables atomic.Int64

// Table creates a fresh table (same schema as template.yaml) for one test and returns its name.
func Table(t testing.TB, db *dynamodb.Client) string {
	t.Helper()
	name := fmt.Sprintf("test-%d-%d", time.Now().UnixNano(), tables.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := table.Create(ctx, db, name); err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}
