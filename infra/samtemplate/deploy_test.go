package samtemplate

// Checks that need the template resolved for given parameter values (Deploy): the IAM-only gateway routes,
// the optional fixed egress IPs, the optional custom domain and the values for the Open Platform console;
// and the checks of the alarms against the metric names shared/metrics declares and the code emits.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wxtpp/platform/shared/metrics"
)

// checkRouteAuthorization: the /v1/ routes (the gateway, for the provider's own services) require IAM
// (SigV4), and no other route requires anything: WeChat's pushes and the browsers on the authorization
// pages cannot sign requests.
func checkRouteAuthorization(tpl *Template) []string {
	var problems []string
	for _, r := range tpl.Routes() {
		auth := "NONE"
		if tpl.Type(r.Source) == "AWS::ApiGatewayV2::Route" {
			if a, ok := tpl.Properties(r.Source)["AuthorizationType"]; ok {
				auth = strings.Trim(compact(a), `"`)
			}
		} else if fn, name, ok := strings.Cut(r.Source, ".Events."); ok { // SAM Api/HttpApi event
			events, _ := tpl.Properties(fn)["Events"].(map[string]any)
			ev, _ := events[name].(map[string]any)
			props, _ := ev["Properties"].(map[string]any)
			if a, ok := props["Auth"].(map[string]any); ok {
				auth = strings.Trim(compact(a["Authorizer"]), `"`)
			}
		}
		switch gateway := strings.HasPrefix(r.Path, "/v1/"); {
		case gateway && auth != "AWS_IAM":
			problems = append(problems, fmt.Sprintf("route %q (%s) has authorization %s, want AWS_IAM: /v1/ is the gateway for the provider's own services", r.Key(), r.Source, auth))
		case !gateway && auth != "NONE":
			problems = append(problems, fmt.Sprintf("route %q (%s) has authorization %s, want none: only /v1/ routes are signed (WeChat and browsers cannot sign)", r.Key(), r.Source, auth))
		}
	}
	return problems
}

// egressModes are the values of FixedEgressIps and the NAT gateways (= Elastic IPs) each one creates.
var egressModes = []struct {
	mode string
	nats int
}{{"none", 0}, {"one-az", 1}, {"two-az", 2}}

const vpcAccessPolicy = "AWSLambdaVPCAccessExecutionRole"

// checkFixedEgress: FixedEgressIps=none creates no network resource at all (every AWS::EC2:: resource is
// conditional); one-az and two-az put every function in private subnets whose default route leads to a NAT
// gateway with an Elastic IP (one, or one per zone), with DynamoDB on a gateway endpoint, behind a security
// group without ingress; the functions' roles get the VPC access policy then and only then, the functions
// move into the VPC only once that path exists, and the EgressIps output lists exactly the Elastic IPs.
func checkFixedEgress(tpl *Template) []string {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	param, _ := tpl.Section("Parameters")["FixedEgressIps"].(map[string]any)
	if param == nil {
		return []string{"parameter FixedEgressIps is missing"}
	}
	if param["Default"] != "none" || compact(param["AllowedValues"]) != `["none","one-az","two-az"]` {
		fail("parameter FixedEgressIps: Default %s, AllowedValues %s; want none and [none, one-az, two-az]", compact(param["Default"]), compact(param["AllowedValues"]))
	}

	var network []string // every AWS::EC2:: resource
	for _, id := range sortedKeys(tpl.Section("Resources")) {
		if strings.HasPrefix(tpl.Type(id), "AWS::EC2::") {
			network = append(network, id)
		}
	}
	for _, m := range egressModes {
		d := tpl.Deploy(map[string]string{"FixedEgressIps": m.mode})
		where := "FixedEgressIps=" + m.mode
		creates := func(section, id string) bool {
			ok, err := d.Creates(section, id)
			if err != nil {
				fail("%s: %v", where, err)
			}
			return ok
		}
		created := map[string][]string{} // type -> ids
		for _, id := range network {
			if creates("Resources", id) {
				created[tpl.Type(id)] = append(created[tpl.Type(id)], id)
				if m.mode == "none" {
					fail("%s (%s) exists with FixedEgressIps=none: give it Condition HasFixedEgress", id, tpl.Type(id))
				}
			}
		}
		output := creates("Outputs", "EgressIps")
		if output != (m.mode != "none") {
			fail("%s: output EgressIps exists = %v, want %v", where, output, m.mode != "none")
		}

		// Roles: the VPC access policy lets a function create and delete network interfaces anywhere in
		// the account; attach it only when the functions run in the VPC.
		for _, fn := range functions(tpl) {
			role := tpl.FunctionRole(fn)
			if role == "" {
				if m.mode == "none" {
					fail("%s has no explicit Role: SAM attaches %s to the roles it makes whenever VpcConfig is present, even as an !If that resolves to nothing", fn, vpcAccessPolicy)
				}
				continue
			}
			arns, err := d.Eval(tpl.Properties(role)["ManagedPolicyArns"])
			if err != nil {
				fail("%s: role %s: ManagedPolicyArns: %v", where, role, err)
				continue
			}
			if has := strings.Contains(compact(arns), "/"+vpcAccessPolicy+`"`); has != (m.mode != "none") {
				fail("%s: role %s of %s attaches %s = %v, want %v", where, role, fn, vpcAccessPolicy, has, m.mode != "none")
			}
		}

		vpcConfigs := map[string]map[string]any{}
		for _, fn := range functions(tpl) {
			raw := tpl.FunctionProperty(fn, "VpcConfig")
			if raw == nil {
				if m.mode == "none" {
					fail("%s has no VpcConfig (own or Globals.Function); every function calls WeChat", fn)
				}
				continue
			}
			v, err := d.Eval(raw)
			if err != nil {
				fail("%s: %s: VpcConfig: %v", where, fn, err)
				continue
			}
			cfg, _ := v.(map[string]any)
			switch {
			case m.mode == "none" && v != NoValue:
				fail("%s: VpcConfig is %s with FixedEgressIps=none; want !If [HasFixedEgress, {...}, !Ref AWS::NoValue]", fn, compact(v))
			case m.mode != "none" && cfg == nil:
				fail("%s: %s has no VpcConfig", where, fn)
			case m.mode != "none":
				vpcConfigs[fn] = cfg
			}
		}
		if m.mode == "none" {
			continue
		}

		for typ, want := range map[string]int{"AWS::EC2::VPC": 1, "AWS::EC2::NatGateway": m.nats, "AWS::EC2::EIP": m.nats, "AWS::EC2::InternetGateway": 1} {
			if n := len(created[typ]); n != want {
				fail("%s: %d %s %v, want %d", where, n, typ, created[typ], want)
			}
		}
		// Each NAT gateway in its own zone, with its own Elastic IP.
		natZones, natEips := map[string]bool{}, map[string]bool{}
		for _, nat := range created["AWS::EC2::NatGateway"] {
			subnet, _ := d.String(tpl.Properties(nat)["SubnetId"])
			zone, _ := d.String(tpl.Properties(strings.Trim(subnet, "<>"))["AvailabilityZone"])
			natZones[zone] = true
			eip, _ := d.String(tpl.Properties(nat)["AllocationId"])
			natEips[strings.TrimSuffix(strings.TrimPrefix(eip, "<"), ".AllocationId>")] = true
		}
		if len(natZones) != m.nats || len(natEips) != m.nats {
			fail("%s: the NAT gateways use zones %v and Elastic IPs %v; want %d different of each", where, sortedKeys(natZones), sortedKeys(natEips), m.nats)
		}

		// The EgressIps output: exactly the Elastic IPs of the NAT gateways.
		if output {
			value, err := d.String(tpl.Section("Outputs")["EgressIps"].(map[string]any)["Value"])
			if err != nil {
				fail("%s: output EgressIps: %v", where, err)
			}
			var got []string
			for _, ip := range strings.Split(value, ",") {
				got = append(got, strings.Trim(ip, "<>"))
			}
			if slices.Sort(got); !slices.Equal(got, sortedKeys(natEips)) {
				fail("%s: output EgressIps is %q, want the comma-joined Refs of %v", where, value, sortedKeys(natEips))
			}
		}

		// Routes and endpoint: every subnet a function uses leaves through a NAT gateway and reaches DynamoDB
		// through the gateway endpoint.
		routeOf := map[string]string{} // subnet -> route table
		var assocs []string
		for _, id := range created["AWS::EC2::SubnetRouteTableAssociation"] {
			subnet, _ := d.String(tpl.Properties(id)["SubnetId"])
			table, _ := d.String(tpl.Properties(id)["RouteTableId"])
			routeOf[strings.Trim(subnet, "<>")] = strings.Trim(table, "<>")
			assocs = append(assocs, id)
		}
		natRoute := map[string]string{} // route table -> its default route through a NAT gateway
		natOf := map[string]string{}    // route table -> that NAT gateway
		for _, id := range created["AWS::EC2::Route"] {
			props := tpl.Properties(id)
			table, _ := d.String(props["RouteTableId"])
			nat, _ := d.String(props["NatGatewayId"])
			if props["DestinationCidrBlock"] == "0.0.0.0/0" && slices.Contains(created["AWS::EC2::NatGateway"], strings.Trim(nat, "<>")) {
				natRoute[strings.Trim(table, "<>")] = id
				natOf[strings.Trim(table, "<>")] = strings.Trim(nat, "<>")
			}
		}
		natZone := func(nat string) string {
			subnet, _ := d.String(tpl.Properties(nat)["SubnetId"])
			zone, _ := d.String(tpl.Properties(strings.Trim(subnet, "<>"))["AvailabilityZone"])
			return zone
		}
		var endpointTables []string
		for _, id := range created["AWS::EC2::VPCEndpoint"] {
			props := tpl.Properties(id)
			service, _ := d.String(props["ServiceName"])
			if props["VpcEndpointType"] == "Gateway" && strings.HasSuffix(service, ".dynamodb") {
				tables, _ := d.Eval(props["RouteTableIds"])
				for _, t := range asList(tables) {
					endpointTables = append(endpointTables, strings.Trim(fmt.Sprint(t), "<>"))
				}
			}
		}
		if len(endpointTables) == 0 {
			fail("%s: no DynamoDB gateway VPC endpoint (table traffic would pay for the NAT gateway)", where)
		}
		for _, fn := range sortedKeys(vpcConfigs) {
			cfg := vpcConfigs[fn]
			subnets, groups := asList(cfg["SubnetIds"]), asList(cfg["SecurityGroupIds"])
			zones := map[string]bool{}
			// What the function must not be moved in before: the default routes of its subnets, their
			// associations and the endpoint.
			var path []string
			for _, s := range subnets {
				subnet := strings.Trim(fmt.Sprint(s), "<>")
				zone, _ := d.String(tpl.Properties(subnet)["AvailabilityZone"])
				zones[zone] = true
				table := routeOf[subnet]
				switch {
				case tpl.Type(subnet) != "AWS::EC2::Subnet" || !slices.Contains(created["AWS::EC2::Subnet"], subnet):
					fail("%s: %s's VpcConfig names %s, which is not a subnet of this deploy", where, fn, subnet)
				case natRoute[table] == "":
					fail("%s: %s's subnet %s (route table %q) has no default route through a NAT gateway", where, fn, subnet, table)
				case !slices.Contains(endpointTables, table):
					fail("%s: %s's subnet %s (route table %s) does not reach DynamoDB through the gateway endpoint", where, fn, subnet, table)
				case m.nats > 1 && natZone(natOf[table]) != zone:
					// With a NAT gateway per zone, a subnet must not depend on another zone's.
					fail("%s: %s's subnet %s (zone %s) leaves through %s in zone %s", where, fn, subnet, zone, natOf[table], natZone(natOf[table]))
				default:
					path = append(path, natRoute[table])
				}
			}
			if len(zones) < 2 {
				fail("%s: %s runs in %d zone(s) %v, want subnets in 2", where, fn, len(zones), sortedKeys(zones))
			}
			for _, g := range groups {
				group := strings.Trim(fmt.Sprint(g), "<>")
				props := tpl.Properties(group)
				if tpl.Type(group) != "AWS::EC2::SecurityGroup" {
					fail("%s: %s's VpcConfig names security group %s, which is not one", where, fn, group)
				} else if props["SecurityGroupIngress"] != nil || len(asList(props["SecurityGroupEgress"])) == 0 {
					fail("%s: security group %s must have egress and no ingress", where, group)
				}
			}
			if len(groups) == 0 {
				fail("%s: %s's VpcConfig has no security group", where, fn)
			}
			for _, id := range assocs {
				subnet, _ := d.String(tpl.Properties(id)["SubnetId"])
				if slices.Contains(subnets, any(subnet)) {
					path = append(path, id)
				}
			}
			path = append(path, created["AWS::EC2::VPCEndpoint"]...)
			var waitsFor strings.Builder
			for _, dep := range asList(tpl.Resource(fn)["DependsOn"]) {
				id, _ := dep.(string)
				waitsFor.WriteString(id + " ")
				if meta, err := d.Eval(tpl.Resource(id)["Metadata"]); err == nil {
					waitsFor.WriteString(strings.Join(stringLeaves(meta), " ") + " ")
				}
			}
			for _, id := range path {
				if !strings.Contains(waitsFor.String(), "<"+id+">") && !strings.Contains(waitsFor.String(), id+" ") {
					fail("%s: %s may move into the VPC before %s exists (WeChat or DynamoDB calls would fail meanwhile): make it DependsOn a resource whose Metadata references it under the condition", where, fn, id)
				}
			}
		}
	}
	return problems
}

// consoleOutputs are the values the Open Platform console asks for: output -> the console's name for it.
var consoleOutputs = map[string]string{
	"TicketEventsUrl":          "授权事件接收URL",
	"MessageCallbackUrl":       "消息与事件接收URL",
	"AuthStartDomain":          "授权发起页域名",
	"OfficialAccountWebDomain": "公众号开发域名",
	"EgressIps":                "白名单IP",
}

const testCertificate = "arn:aws:acm:ap-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"

// checkConsoleOutputs: every console value is an output described by its console name; the base URL of the
// URLs and domains (and of every function's PUBLIC_BASE_URL) is an explicit PublicBaseUrl, else the custom
// domain, else the execute-api URL; DomainName and CertificateArn come together (Rules); the custom domain
// is a regional TLS 1.2 domain mapped to the routes' API, with DomainTarget to point DNS at.
func checkConsoleOutputs(tpl *Template) []string {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	outputs := tpl.Section("Outputs")
	for _, name := range sortedKeys(consoleOutputs) {
		out, ok := outputs[name].(map[string]any)
		if !ok {
			fail("output %s (%s) is missing", name, consoleOutputs[name])
			continue
		}
		if desc, _ := out["Description"].(string); !strings.Contains(desc, consoleOutputs[name]) {
			fail("output %s: Description %q does not name the console field %s", name, desc, consoleOutputs[name])
		}
	}

	api := ""
	for _, r := range tpl.Routes() {
		if refs := RefsIn(tpl.Properties(r.Source)["ApiId"]); len(refs) == 1 {
			api = refs[0].Target
		}
	}
	executeAPI := "https://<" + api + ">.execute-api.<AWS::Region>.<AWS::URLSuffix>"
	domain := map[string]string{"DomainName": "wx.example.com", "CertificateArn": testCertificate}
	withCDN := map[string]string{"PublicBaseUrl": "https://cdn.example.com"}
	both := map[string]string{"PublicBaseUrl": "https://cdn.example.com", "DomainName": "wx.example.com", "CertificateArn": testCertificate}
	for _, c := range []struct {
		name   string
		params map[string]string
		base   string
		domain bool
	}{
		{"defaults", nil, executeAPI, false},
		{"DomainName", domain, "https://wx.example.com", true},
		{"PublicBaseUrl", withCDN, "https://cdn.example.com", false},
		{"PublicBaseUrl and DomainName", both, "https://cdn.example.com", true},
	} {
		d := tpl.Deploy(c.params)
		if failed, err := d.FailedRules(); err != nil || len(failed) > 0 {
			fail("%s: the Rules refuse the deploy: %v %v", c.name, failed, err)
		}
		host := strings.TrimPrefix(c.base, "https://")
		want := map[string]string{
			"TicketEventsUrl":          c.base + "/wechat/component/events",
			"MessageCallbackUrl":       c.base + "/wechat/$APPID$/callback",
			"AuthStartDomain":          host,
			"OfficialAccountWebDomain": host,
			"PublicBaseUrl":            c.base,
		}
		for _, name := range sortedKeys(want) {
			out, _ := outputs[name].(map[string]any)
			if out == nil {
				continue // reported above or by checkOutputs
			}
			got, err := d.String(out["Value"])
			if err != nil || got != want[name] {
				fail("%s: output %s is %q (%v), want %q", c.name, name, got, err, want[name])
			}
		}
		for _, fn := range functions(tpl) {
			got, err := d.String(envVars(tpl, fn)["PUBLIC_BASE_URL"])
			if err != nil || got != c.base {
				fail("%s: %s gets PUBLIC_BASE_URL %q (%v), want %q", c.name, fn, got, err, c.base)
			}
		}

		// The custom domain and its mapping exist exactly when DomainName is set.
		var domains, mappings []string
		for _, id := range sortedKeys(tpl.Section("Resources")) {
			ok, err := d.Creates("Resources", id)
			if err != nil {
				fail("%s: %v", c.name, err)
			}
			switch {
			case !ok:
			case tpl.Type(id) == "AWS::ApiGatewayV2::DomainName":
				domains = append(domains, id)
			case tpl.Type(id) == "AWS::ApiGatewayV2::ApiMapping":
				mappings = append(mappings, id)
			}
		}
		target, err := d.Creates("Outputs", "DomainTarget")
		if err != nil {
			fail("%s: %v", c.name, err)
		}
		if !c.domain {
			if len(domains)+len(mappings) > 0 || target {
				fail("%s: without DomainName the stack has domain resources %v %v (DomainTarget output: %v)", c.name, domains, mappings, target)
			}
			continue
		}
		if len(domains) != 1 || len(mappings) != 1 {
			fail("%s: %d AWS::ApiGatewayV2::DomainName %v and %d ApiMapping %v, want one each", c.name, len(domains), domains, len(mappings), mappings)
			continue
		}
		props, err := d.Eval(tpl.Properties(domains[0]))
		if err != nil {
			fail("%s: %s: %v", c.name, domains[0], err)
		}
		dn, _ := props.(map[string]any)
		configs := asList(dn["DomainNameConfigurations"])
		wantConfig := compact(map[string]any{"CertificateArn": testCertificate, "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"})
		if dn["DomainName"] != "wx.example.com" || len(configs) != 1 || compact(configs[0]) != wantConfig {
			fail("%s: %s is %s, want DomainName wx.example.com and the one configuration %s", c.name, domains[0], compact(props), wantConfig)
		}
		mapping, _ := d.Eval(tpl.Properties(mappings[0]))
		m, _ := mapping.(map[string]any)
		stage := strings.Trim(fmt.Sprint(m["Stage"]), "<>")
		stageAPI := RefsIn(tpl.Properties(stage)["ApiId"])
		if m["DomainName"] != "<"+domains[0]+">" || m["ApiId"] != "<"+api+">" || tpl.Type(stage) != "AWS::ApiGatewayV2::Stage" || len(stageAPI) != 1 || stageAPI[0].Target != api {
			fail("%s: %s is %s, want DomainName !Ref %s, ApiId !Ref %s and Stage !Ref a stage of it", c.name, mappings[0], compact(mapping), domains[0], api)
		}
		out, _ := outputs["DomainTarget"].(map[string]any)
		if got, _ := d.String(out["Value"]); !target || got != "<"+domains[0]+".RegionalDomainName>" {
			fail("%s: output DomainTarget is %q (exists: %v), want !GetAtt %s.RegionalDomainName", c.name, got, target, domains[0])
		}
	}

	// Half a custom domain is refused before anything changes.
	for _, params := range []map[string]string{{"DomainName": "wx.example.com"}, {"CertificateArn": testCertificate}} {
		if failed, err := tpl.Deploy(params).FailedRules(); err != nil || len(failed) == 0 {
			fail("the Rules accept %v alone (%v); want DomainName and CertificateArn together", params, err)
		}
	}
	return problems
}

// TestDomainParameterPatterns: CloudFormation refuses, before deploying, a DomainName or CertificateArn the
// custom domain could not use.
func TestDomainParameterPatterns(t *testing.T) {
	p := loadProject(t, repoRoot)
	for name, c := range map[string]struct{ good, bad []string }{
		"DomainName": {
			good: []string{"", "wx.example.com", "a-b.c.example.cn", "x1.example.io"},
			bad:  []string{"https://wx.example.com", "wx.example.com/", "WX.example.com", "wx.example.com:443", "example", "-x.example.com", "wx..example.com"},
		},
		"CertificateArn": {
			good: []string{"", testCertificate, "arn:aws-cn:acm:cn-north-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"},
			bad:  []string{"0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "arn:aws:iam::123456789012:server-certificate/x", "arn:aws:acm:ap-east-1:123:certificate/x"},
		},
	} {
		param, _ := p.tpl.Section("Parameters")[name].(map[string]any)
		pattern, ok := param["AllowedPattern"].(string)
		if !ok || param["Default"] != "" {
			t.Errorf("parameter %s: want Default \"\" and an AllowedPattern, got %s", name, compact(param))
			continue
		}
		re := regexp.MustCompile("^(?:" + pattern + ")$")
		for _, v := range c.good {
			if !re.MatchString(v) {
				t.Errorf("%s: %q is refused", name, v)
			}
		}
		for _, v := range c.bad {
			if re.MatchString(v) {
				t.Errorf("%s: %q is accepted", name, v)
			}
		}
	}
}

// declaredMetrics reads the metric-name constants of a Go file (shared/metrics/metrics.go) with go/parser: the
// string constants of every const block whose doc comment starts with "Metric names". It returns the metric
// name (the constant's value) -> the constant's name.
func declaredMetrics(path string) (map[string]string, error) {
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST || gen.Doc == nil || !strings.HasPrefix(gen.Doc.Text(), "Metric names") {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i >= len(vs.Values) {
					return nil, fmt.Errorf("%s: constant %s has no value of its own", path, name.Name)
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return nil, fmt.Errorf("%s: metric constant %s is not a string literal", path, name.Name)
				}
				out[strings.Trim(lit.Value, "`\"")] = name.Name
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no const block documented \"Metric names ...\"", path)
	}
	return out, nil
}

// checkAlarmMetrics: every alarm on the platform's namespace (including metric-math alarms' metrics) names
// a metric shared/metrics declares; a misspelt name would never get data.
func checkAlarmMetrics(tpl *Template, declared map[string]string) []string {
	var problems []string
	for _, id := range tpl.LogicalIDs("AWS::CloudWatch::Alarm") {
		walkMaps(tpl.Properties(id), func(m map[string]any) {
			if m["Namespace"] != metrics.Namespace {
				return
			}
			name, _ := m["MetricName"].(string)
			if _, ok := declared[name]; !ok {
				problems = append(problems, fmt.Sprintf("alarm %s: metric %s %s is not one of the metric names declared in shared/metrics/metrics.go %v",
					id, metrics.Namespace, compact(m["MetricName"]), sortedKeys(declared)))
			}
		})
	}
	return problems
}

var metricsUse = regexp.MustCompile(`\bmetrics\.([A-Z][A-Za-z0-9_]*)\b`)

// checkMetricsEmitted: every declared metric constant is used (metrics.<Name>) by non-test Go code outside
// shared/metrics, i.e. something emits it; an alarm on a metric nothing emits would be silent forever (or,
// with breaching missing data, never clear).
func checkMetricsEmitted(root string, declared map[string]string) []string {
	used := map[string][]string{} // constant -> files
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if rel != "." && (strings.HasPrefix(e.Name(), ".") || rel == "build" || rel == "shared/metrics" || e.Name() == "vendor" || e.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricsUse.FindAllStringSubmatch(string(src), -1) {
			used[m[1]] = append(used[m[1]], rel)
		}
		return nil
	})
	if err != nil {
		return []string{fmt.Sprintf("walk the Go files: %v", err)}
	}
	var problems []string
	for _, metric := range sortedKeys(declared) {
		if name := declared[metric]; len(used[name]) == 0 {
			problems = append(problems, fmt.Sprintf("metrics.%s (metric %s) is declared in shared/metrics/metrics.go, but no non-test Go code outside shared/metrics uses it: nothing emits it", name, metric))
		}
	}
	return problems
}

// TestMetrics ties the template's alarms and dashboard to the metric names shared/metrics declares (read from
// its source) and the code emits.
func TestMetrics(t *testing.T) {
	declared, err := declaredMetrics(filepath.Join(repoRoot, "shared", "metrics", "metrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	p := loadProject(t, repoRoot)
	t.Run("alarms name declared metrics", func(t *testing.T) {
		for _, problem := range checkAlarmMetrics(p.tpl, declared) {
			t.Error(problem)
		}
	})
	t.Run("declared metrics are emitted", func(t *testing.T) {
		for _, problem := range checkMetricsEmitted(repoRoot, declared) {
			t.Error(problem)
		}
	})
	t.Run("dashboard graphs every declared metric", func(t *testing.T) {
		names := sortedKeys(declared)
		for _, id := range p.tpl.LogicalIDs("AWS::CloudWatch::Dashboard") {
			for _, problem := range checkDashboard(p.tpl, id, names) {
				t.Error(problem)
			}
		}
	})
}
