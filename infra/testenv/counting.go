package testenv

import (
	"net/http"
	"sync/atomic"
)

// CountingClient counts the HTTP requests an AWS SDK client makes (one per API call, retries included):
// set it as aws.Config.HTTPClient to count DynamoDB requests in a benchmark.
type CountingClient struct {
	N     atomic.Int64
	Inner *http.Client
}

// NewCountingClient returns a counting client over a transport with room for many connections.
func NewCountingClient() *CountingClient {
	return &CountingClient{Inner: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

// Do counts and sends r.
func (c *CountingClient) Do(r *http.Request) (*http.Response, error) {
	c.N.Add(1)
	return c.Inner.Do(r)
}
