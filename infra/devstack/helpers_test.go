package devstack_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxtpp/platform/infra/devstack"
	"github.com/wxtpp/platform/infra/testenv"
)

// startStack starts the stack as TestStackComesUpLikeMakeDev does: built binaries, options from an empty
// environment, any free port.
// Its logs may be read once the stack is closed.
func startStack(t testing.TB) (*devstack.Stack, devstack.Options, *testenv.LogBuffer) {
	t.Helper()
	testenv.DynamoDB(t) // skip or fail clearly without the emulators
	testenv.SQS(t)
	ctx := context.Background()
	bin := t.TempDir()
	if err := devstack.Build(ctx, filepath.Join("..", ".."), bin); err != nil {
		t.Fatal(err)
	}
	opts, err := devstack.OptionsFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	opts.Port = 0
	if benchInstances > 0 {
		opts.Instances = benchInstances
	}
	opts.BinDir = bin
	opts.Table = fmt.Sprintf("devstack-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	opts.AWS = testenv.AWSConfig(t)
	opts.RetryBase = time.Second // failed jobs come back within the test
	opts.DynamoDBEndpoint, opts.SQSEndpoint = os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), os.Getenv("AWS_ENDPOINT_URL_SQS")
	logs := &testenv.LogBuffer{}
	opts.Logs = logs
	stack, err := devstack.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stack.Close() }) // a second Close is a no-op
	return stack, opts, logs
}
