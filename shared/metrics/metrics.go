// Package metrics publishes counts as CloudWatch metrics by logging them in the embedded metric format
// (EMF): one JSON log line that CloudWatch Logs turns into metrics, so no function needs cloudwatch:PutMetricData
// or spends a network call on it. template.yaml's dashboard and alarms read these names under Namespace.
//
// Spec: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
package metrics

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"time"
)

// Namespace is the CloudWatch namespace of every metric emitted here.
const Namespace = "Wxtpp"

// Metric names (Unit Count).
const (
	RefreshRuns           = "RefreshRuns" // one per scheduled refresh run
	TokensRefreshed       = "TokensRefreshed"
	RefreshFailures       = "RefreshFailures"
	MessagesReceived      = "MessagesReceived" // verified pushes on the message URL
	MessagesRelayed       = "MessagesRelayed"  // delivered to a tenant webhook
	RelayFailures         = "RelayFailures"    // webhook deliveries that failed (retried via the queue)
	CampaignAppsSubmitted = "CampaignAppsSubmitted"
	CampaignAppsReleased  = "CampaignAppsReleased"
	CampaignAppsFailed    = "CampaignAppsFailed"   // apps ending failed or blocked
	CampaignStepFailures  = "CampaignStepFailures" // a step's WeChat call failed (retried or final)
	JobsDeadLettered      = "JobsDeadLettered"
	TicketsReceived       = "TicketsReceived"       // verified component_verify_ticket pushes
	AuthorizersNeedReauth = "AuthorizersNeedReauth" // accounts newly marked needs_reauth
	// MessageCallbackServerErrors counts message-URL answers with a 5xx status (WeChat retries, then gives up).
	MessageCallbackServerErrors = "MessageCallbackServerErrors"
	GatewayRequests             = "GatewayRequests"     // WeChat calls forwarded for the provider's services
	GatewayTokenRetries         = "GatewayTokenRetries" // forwarded calls retried after 40001/42001
)

// Metric names with other units.
const (
	// MessageCallbackLatency is how long the message URL took to answer, in milliseconds (WeChat waits 5 s).
	MessageCallbackLatency = "MessageCallbackLatency"
	// ComponentTokenAge is how old the stored component token is, in seconds, at each refresh run: past its
	// lifetime (7200 s) the refresher is not keeping it fresh.
	ComponentTokenAge = "ComponentTokenAge"
)

// Units of the metrics emitted here (CloudWatch's names).
const (
	UnitCount        = "Count"
	UnitMilliseconds = "Milliseconds"
	UnitSeconds      = "Seconds"
)

// maxPerRecord is EMF's limit of metric definitions in one directive.
const maxPerRecord = 100

// Count emits one EMF record with the given counts (name -> value) under Namespace, with no dimensions
// (Dimensions: [[]], which the spec allows: "A DimensionSet MAY be empty"), Unit Count and Timestamp now in
// ms, as an Info line with msg "metrics". Zero (and non-finite) counts are left out, so a metric has data
// points only when something happened: alarms on them treat missing data as not breaching. Nothing is logged
// when no count is left.
//
// The record is only a metric if its keys reach the top level of the JSON line: pass a logger built on
// slog's JSON handler without WithGroup (With attributes are fine), at a level that lets Info through.
func Count(log *slog.Logger, counts map[string]float64) { emit(log, UnitCount, counts) }

// Milliseconds emits values in milliseconds, as Count does counts.
func Milliseconds(log *slog.Logger, values map[string]float64) { emit(log, UnitMilliseconds, values) }

// Seconds emits values in seconds, as Count does counts.
func Seconds(log *slog.Logger, values map[string]float64) { emit(log, UnitSeconds, values) }

func emit(log *slog.Logger, unit string, counts map[string]float64) {
	if log == nil {
		log = slog.Default()
	}
	names := make([]string, 0, len(counts))
	for name, v := range counts {
		if name == "" || v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names) // stable lines, easier to read and test
	if len(names) > maxPerRecord {
		names = names[:maxPerRecord] // unreachable with the names above; CloudWatch would drop the record
	}

	type definition struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	type directive struct {
		Namespace  string       `json:"Namespace"`
		Dimensions [][]string   `json:"Dimensions"`
		Metrics    []definition `json:"Metrics"`
	}
	type metadata struct {
		Timestamp         int64       `json:"Timestamp"`
		CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
	}
	defs := make([]definition, len(names))
	attrs := make([]slog.Attr, 0, len(names)+1)
	for i, name := range names {
		defs[i] = definition{Name: name, Unit: unit}
	}
	attrs = append(attrs, slog.Any("_aws", metadata{
		Timestamp:         time.Now().UnixMilli(),
		CloudWatchMetrics: []directive{{Namespace: Namespace, Dimensions: [][]string{{}}, Metrics: defs}},
	}))
	for _, name := range names {
		attrs = append(attrs, slog.Float64(name, counts[name]))
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "metrics", attrs...)
}
