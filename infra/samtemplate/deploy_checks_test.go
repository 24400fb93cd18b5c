package samtemplate

// The checks of deploy_test.go, each run on a template broken in one way (mostly the project's own
// template.yaml with one edit), must report a problem that names the offender; Deploy must resolve what
// they rely on.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeployEval(t *testing.T) {
	tpl := mustParse(t, `
Parameters:
  Mode: {Type: String, Default: none}
  Host: {Type: String, Default: ""}
  Count: {Type: Number, Default: 3}
  NoDefault: {Type: String}
Conditions:
  On: !Not [!Equals [!Ref Mode, none]]
  Two: !Equals [!Ref Mode, two]
  OnAndHost: !And [{Condition: On}, !Not [!Equals [!Ref Host, ""]]]
  Either: !Or [{Condition: Two}, !Equals [!Ref Count, 3]]
Rules:
  HostNeedsMode:
    RuleCondition: !Not [!Equals [!Ref Host, ""]]
    Assertions:
      - Assert: !Not [!Equals [!Ref Mode, none]]
        AssertDescription: Host needs a Mode.
Resources:
  Topic: {Type: AWS::SNS::Topic}
  Extra: {Type: AWS::SNS::Topic, Condition: Two}
Outputs:
  Url: {Value: !Join ["", [!If [OnAndHost, !Sub "https://${Host}", !Sub "https://${Topic}.${AWS::Region}"], /x]]}
  Domain: {Value: !Select [2, !Split ["/", !Sub ["https://${H}/p", {H: !Ref Host}]]]}
  List: {Value: !Join [",", [!Ref Topic, !If [Two, !GetAtt Extra.TopicName, !Ref AWS::NoValue]]]}
  Literal: {Value: !Sub "${!Keep}-${Count}"}
  Bad: {Value: !Ref NoDefault}
`)
	out := func(d *Deploy, name string) string {
		t.Helper()
		s, err := d.String(tpl.Section("Outputs")[name].(map[string]any)["Value"])
		if err != nil {
			t.Errorf("output %s: %v", name, err)
		}
		return s
	}
	def := tpl.Deploy(nil)
	two := tpl.Deploy(map[string]string{"Mode": "two", "Host": "h.example.com", "AWS::Region": "ap-east-1"})
	for _, c := range []struct {
		d          *Deploy
		name, want string
	}{
		{def, "Url", "https://<Topic>.<AWS::Region>/x"},
		{two, "Url", "https://h.example.com/x"},
		{two, "Domain", "h.example.com"},
		{def, "List", "<Topic>"},
		{two, "List", "<Topic>,<Extra.TopicName>"},
		{def, "Literal", "${Keep}-3"},
	} {
		if got := out(c.d, c.name); got != c.want {
			t.Errorf("output %s = %q, want %q", c.name, got, c.want)
		}
	}
	if _, err := def.String(tpl.Section("Outputs")["Bad"].(map[string]any)["Value"]); err == nil || !strings.Contains(err.Error(), "NoDefault") {
		t.Errorf("a parameter without default or value: err = %v", err)
	}
	for _, c := range []struct {
		d    *Deploy
		cond string
		want bool
	}{{def, "On", false}, {two, "On", true}, {def, "OnAndHost", false}, {two, "OnAndHost", true}, {def, "Either", true}} {
		if got, err := c.d.Condition(c.cond); err != nil || got != c.want {
			t.Errorf("condition %s = %v (%v), want %v", c.cond, got, err, c.want)
		}
	}
	if ok, _ := def.Creates("Resources", "Extra"); ok {
		t.Error("Extra is created without its condition")
	}
	if ok, _ := two.Creates("Resources", "Extra"); !ok {
		t.Error("Extra is not created with its condition")
	}
	if failed, err := tpl.Deploy(map[string]string{"Host": "h"}).FailedRules(); err != nil || len(failed) != 1 || !strings.Contains(failed[0], "Host needs a Mode") {
		t.Errorf("FailedRules = %q, %v; want HostNeedsMode", failed, err)
	}
	if failed, err := two.FailedRules(); err != nil || len(failed) != 0 {
		t.Errorf("FailedRules = %q, %v; want none", failed, err)
	}
}

func TestCheckRouteAuthorization(t *testing.T) {
	tpl := mustParse(t, httpTemplate+`
  OpenGatewayRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: GET /v1/things, Target: !Sub "integrations/${PagesIntegration}"}
  SignedGatewayRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: POST /v1/things, AuthorizationType: AWS_IAM, Target: !Sub "integrations/${PagesIntegration}"}
  SignedPageRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: GET /auth/callback, AuthorizationType: AWS_IAM, Target: !Sub "integrations/${PagesIntegration}"}
`)
	problems := checkRouteAuthorization(tpl)
	wantProblem(t, problems, `route "GET /v1/things" (OpenGatewayRoute) has authorization NONE, want AWS_IAM`)
	wantProblem(t, problems, `route "GET /auth/callback" (SignedPageRoute) has authorization AWS_IAM, want none`)
	if len(problems) != 2 {
		t.Errorf("want 2 problems (POST /v1/things, /auth/start and /debug are right), got %q", problems)
	}
}

// brokenTemplate parses the project's template.yaml with old replaced by new (each must occur exactly once).
func brokenTemplate(t *testing.T, edits ...string) *Template {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i := 0; i+1 < len(edits); i += 2 {
		if n := strings.Count(text, edits[i]); n != 1 {
			t.Fatalf("template.yaml holds %q %d times, want once", edits[i], n)
		}
		text = strings.Replace(text, edits[i], edits[i+1], 1)
	}
	return mustParse(t, text)
}

func TestCheckFixedEgress(t *testing.T) {
	wantProblem(t, checkFixedEgress(brokenTemplate(t,
		"  Vpc:\n    Type: AWS::EC2::VPC\n    Condition: HasFixedEgress\n", "  Vpc:\n    Type: AWS::EC2::VPC\n")),
		"Vpc (AWS::EC2::VPC) exists with FixedEgressIps=none")
	wantProblem(t, checkFixedEgress(brokenTemplate(t,
		"  NatEipB:\n    Type: AWS::EC2::EIP\n    Condition: HasSecondNat\n", "  NatEipB:\n    Type: AWS::EC2::EIP\n")),
		"NatEipB (AWS::EC2::EIP) exists with FixedEgressIps=none")
	// A VpcConfig on the wrong condition, and one without a condition.
	wantProblem(t, checkFixedEgress(brokenTemplate(t,
		"    VpcConfig: !If\n      - HasFixedEgress\n", "    VpcConfig: !If\n      - InChina\n")),
		"FixedEgressIps=one-az: TicketFunction has no VpcConfig")
	wantProblem(t, checkFixedEgress(brokenTemplate(t,
		"      - !Ref AWS::NoValue\n", "      - {SubnetIds: [], SecurityGroupIds: []}\n")),
		`JobsFunction: VpcConfig is {"SecurityGroupIds":[],"SubnetIds":[]} with FixedEgressIps=none`)
	one := brokenTemplate(t, `    DependsOn: [MessageLogGroup, EgressReady]`, `    DependsOn: [MessageLogGroup]`)
	wantProblem(t, checkFixedEgress(one), "FixedEgressIps=one-az: MessageFunction may move into the VPC before PrivateDefaultRouteA exists")
	// Both private subnets leaving through zone A's NAT gateway in two-az.
	wantProblem(t, checkFixedEgress(brokenTemplate(t,
		`      NatGatewayId: !If [HasSecondNat, !Ref NatGatewayB, !Ref NatGatewayA]`, `      NatGatewayId: !Ref NatGatewayA`)),
		"FixedEgressIps=two-az: TicketFunction's subnet PrivateSubnetB (zone <AZ1>) leaves through NatGatewayA in zone <AZ0>")
	wantProblem(t, checkFixedEgress(brokenTemplate(t,
		`    Value: !If [HasSecondNat, !Join [",", [!Ref NatEipA, !Ref NatEipB]], !Ref NatEipA]`, `    Value: !Ref NatEipA`)),
		"FixedEgressIps=two-az: output EgressIps is \"<NatEipA>\", want the comma-joined Refs of [NatEipA NatEipB]")
	wantProblem(t, checkFixedEgress(brokenTemplate(t,
		"      SecurityGroupEgress:\n        - IpProtocol: \"-1\"\n",
		"      SecurityGroupIngress:\n        - {IpProtocol: tcp, FromPort: 22, ToPort: 22, CidrIp: 0.0.0.0/0}\n      SecurityGroupEgress:\n        - IpProtocol: \"-1\"\n")),
		"security group EgressSecurityGroup must have egress and no ingress")
	wantProblem(t, checkFixedEgress(brokenTemplate(t,
		"      ServiceName: !Sub \"com.amazonaws.${AWS::Region}.dynamodb\"\n", "      ServiceName: !Sub \"com.amazonaws.${AWS::Region}.s3\"\n")),
		"no DynamoDB gateway VPC endpoint")

	// SAM Policies instead of an explicit role: SAM would attach the VPC access policy unconditionally.
	tpl := mustParse(t, `
Parameters:
  FixedEgressIps: {Type: String, Default: none, AllowedValues: [none, one-az, two-az]}
Conditions:
  HasFixedEgress: !Not [!Equals [!Ref FixedEgressIps, none]]
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Policies: [{Statement: []}]
      VpcConfig: !If [HasFixedEgress, {SubnetIds: [], SecurityGroupIds: []}, !Ref AWS::NoValue]
`)
	problems := checkFixedEgress(tpl)
	wantProblem(t, problems, "Fn has no explicit Role: SAM attaches AWSLambdaVPCAccessExecutionRole")
	wantProblem(t, problems, "FixedEgressIps=one-az: 0 AWS::EC2::NatGateway [], want 1")
	wantProblem(t, problems, "FixedEgressIps=one-az: Fn runs in 0 zone(s)")
}

func TestCheckFixedEgressRolePolicy(t *testing.T) {
	always := `        - !Sub "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"`
	tpl := brokenTemplate(t, `      Description: Authorization events (component_verify_ticket, authorized, unauthorized, updateauthorized)
      Role: !GetAtt TicketFunctionRole.Arn`, `      Description: Authorization events (component_verify_ticket, authorized, unauthorized, updateauthorized)
      Role: !GetAtt TicketRoleAlways.Arn

  TicketRoleAlways:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      ManagedPolicyArns:
`+always)
	wantProblem(t, checkFixedEgress(tpl), "FixedEgressIps=none: role TicketRoleAlways of TicketFunction attaches AWSLambdaVPCAccessExecutionRole = true, want false")
}

func TestCheckConsoleOutputs(t *testing.T) {
	// The URL that forgets the custom domain.
	problems := checkConsoleOutputs(brokenTemplate(t, `          - !If [HasCustomDomain, !Sub "https://${DomainName}", !Sub "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"]
        - /wechat/component/events`, `          - !Sub "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
        - /wechat/component/events`))
	wantProblem(t, problems, `DomainName: output TicketEventsUrl is "https://<HttpApi>.execute-api.<AWS::Region>.<AWS::URLSuffix>/wechat/component/events"`, `want "https://wx.example.com/wechat/component/events"`)
	// The domain winning over an explicit PublicBaseUrl in the functions' environment.
	wantProblem(t, checkConsoleOutputs(brokenTemplate(t, `        PUBLIC_BASE_URL: !If
          - HasPublicBaseUrl
          - !Ref PublicBaseUrl
          - !If [HasCustomDomain, !Sub "https://${DomainName}",`, `        PUBLIC_BASE_URL: !If
          - HasCustomDomain
          - !Sub "https://${DomainName}"
          - !If [HasPublicBaseUrl, !Ref PublicBaseUrl,`)),
		`PublicBaseUrl and DomainName: TicketFunction gets PUBLIC_BASE_URL "https://wx.example.com" (<nil>), want "https://cdn.example.com"`)
	// A console domain that ignores PublicBaseUrl.
	wantProblem(t, checkConsoleOutputs(brokenTemplate(t, `  AuthStartDomain:
    Description: 授权发起页域名 for the Open Platform console. Merchants start at links signed by `+"`wxtpp auth-link`"+`.
    Value: !If
      - HasPublicBaseUrl`, `  AuthStartDomain:
    Description: 授权发起页域名 for the Open Platform console. Merchants start at links signed by `+"`wxtpp auth-link`"+`.
    Value: !If
      - HasCustomDomain`)),
		`PublicBaseUrl: output AuthStartDomain is "<HttpApi>.execute-api.<AWS::Region>.<AWS::URLSuffix>" (<nil>), want "cdn.example.com"`)
	wantProblem(t, checkConsoleOutputs(brokenTemplate(t, "消息与事件接收URL for the Open Platform console", "Message URL for the Open Platform console")),
		"output MessageCallbackUrl: Description", "does not name the console field 消息与事件接收URL")
	wantProblem(t, checkConsoleOutputs(brokenTemplate(t, "  EgressIps:\n    Condition: HasFixedEgress\n", "  EgressIpList:\n    Condition: HasFixedEgress\n")),
		"output EgressIps (白名单IP) is missing")
	wantProblem(t, checkConsoleOutputs(brokenTemplate(t, "          SecurityPolicy: TLS_1_2\n", "          SecurityPolicy: TLS_1_0\n")),
		"DomainName: ApiDomainName is", `"SecurityPolicy":"TLS_1_0"`)
	wantProblem(t, checkConsoleOutputs(brokenTemplate(t, "      Stage: !Ref HttpApiStage", "      Stage: $default")),
		"DomainName: ApiDomainMapping is", "Stage !Ref a stage of it")
	wantProblem(t, checkConsoleOutputs(brokenTemplate(t, "      - Assert: !Not [!Equals [!Ref CertificateArn, \"\"]]", "      - Assert: !Equals [!Ref DomainName, !Ref DomainName]")),
		"the Rules accept map[DomainName:wx.example.com] alone")
	wantProblem(t, checkConsoleOutputs(brokenTemplate(t, "  DomainTarget:\n    Condition: HasCustomDomain\n", "  DomainTarget:\n")),
		"defaults: without DomainName the stack has domain resources [] [] (DomainTarget output: true)")
}

func TestCheckAlarmMetrics(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  Good:
    Type: AWS::CloudWatch::Alarm
    Properties: {Namespace: Wxtpp, MetricName: TicketsReceived}
  Typo:
    Type: AWS::CloudWatch::Alarm
    Properties: {Namespace: Wxtpp, MetricName: TicketReceived}
  Math:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Metrics:
        - Id: m1
          MetricStat: {Metric: {Namespace: Wxtpp, MetricName: Nope}, Stat: Sum, Period: 300}
  Other:
    Type: AWS::CloudWatch::Alarm
    Properties: {Namespace: AWS/SQS, MetricName: Whatever}
`)
	problems := checkAlarmMetrics(tpl, map[string]string{"TicketsReceived": "TicketsReceived"})
	wantProblem(t, problems, `alarm Typo: metric Wxtpp "TicketReceived" is not one of the metric names declared`)
	wantProblem(t, problems, `alarm Math: metric Wxtpp "Nope"`)
	if len(problems) != 2 {
		t.Errorf("want 2 problems, got %q", problems)
	}
}

func TestDeclaredMetricsAndEmitted(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) {
		t.Helper()
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("shared/metrics/metrics.go", `package metrics

// Namespace is not a metric.
const Namespace = "Wxtpp"

// Metric names (Unit Count).
const (
	Used     = "Used" // emitted below
	TestOnly = "TestOnly"
	InHere   = "InHere"
)

// Metric names with other units.
const Seconds = "AgeSeconds"

const unit = "Count"

func f() { _ = map[string]float64{InHere: 1} }
`)
	write("shared/x/x.go", "package x\n\nvar _ = metrics.Used\nvar _ = metrics.AgeSeconds // the value, not the constant\n")
	write("shared/x/x_test.go", "package x\n\nvar _ = metrics.TestOnly\n")
	write(".cache/mod/y.go", "package y\n\nvar _ = metrics.Seconds\n")

	declared, err := declaredMetrics(filepath.Join(root, "shared/metrics/metrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	if got := compact(declared); got != `{"AgeSeconds":"Seconds","InHere":"InHere","TestOnly":"TestOnly","Used":"Used"}` {
		t.Errorf("declaredMetrics = %s", got)
	}
	problems := checkMetricsEmitted(root, declared)
	wantProblem(t, problems, "metrics.TestOnly (metric TestOnly) is declared", "nothing emits it")
	wantProblem(t, problems, "metrics.InHere")  // used only inside shared/metrics
	wantProblem(t, problems, "metrics.Seconds") // used only in a skipped folder
	if len(problems) != 3 {
		t.Errorf("want 3 problems (Used is emitted), got %q", problems)
	}

	write("empty/metrics.go", "package metrics\n\nconst A = \"A\"\n")
	if _, err := declaredMetrics(filepath.Join(root, "empty/metrics.go")); err == nil || !strings.Contains(err.Error(), "Metric names") {
		t.Errorf("a file without a \"Metric names\" block: err = %v", err)
	}
}

// A function's explicit role (Role: !GetAtt X.Arn) grants to the function; a broad managed policy on a role
// is reported; a base-URL output may point at the prefix of routes.
func TestChecksSeeExplicitRoles(t *testing.T) {
	tpl := mustParse(t, httpTemplate+`
  Table:
    Type: AWS::DynamoDB::Table
    Properties: {KeySchema: []}
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: ., Role: !GetAtt FnRole.Arn}
  FnRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      ManagedPolicyArns: [!Sub "arn:${AWS::Partition}:iam::aws:policy/AmazonDynamoDBFullAccess"]
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement: [{Effect: Allow, Action: dynamodb:Scan, Resource: !GetAtt Table.Arn}]
Outputs:
  PagesBaseUrl: {Value: !Sub "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/auth"}
  ElseBaseUrl: {Value: "https://x/else"}
`)
	if tpl.FunctionRole("Fn") != "FnRole" || tpl.FunctionRole("PagesFunction") != "" {
		t.Errorf("FunctionRole: Fn -> %q, PagesFunction -> %q", tpl.FunctionRole("Fn"), tpl.FunctionRole("PagesFunction"))
	}
	problems := checkGrants(tpl, map[string]map[string][]string{"Fn": {"dynamodb:Scan": {"Table"}, "dynamodb:Query": {"Table"}}})
	wantProblem(t, problems, "Fn is not granted dynamodb:Query on Table")
	if len(problems) != 1 {
		t.Errorf("Scan is granted through FnRole; want only the Query problem, got %q", problems)
	}
	wantProblem(t, checkIAM(tpl), "FnRole attaches managed policy arn:${AWS::Partition}:iam::aws:policy/AmazonDynamoDBFullAccess")
	problems = checkOutputs(tpl)
	wantProblem(t, problems, "output ElseBaseUrl points at /else, which no route of the template serves")
	for _, p := range problems {
		if strings.Contains(p, "PagesBaseUrl") {
			t.Errorf("/auth is the base of GET /auth/start, got %q", p)
		}
	}
}
