package samtemplate

// Each check in template_test.go, run on a small template broken in one way, must report a problem
// that names the offender; and the helpers must read what the checks rely on.

import (
	"slices"
	"strings"
	"testing"
)

func mustParse(t *testing.T, yaml string) *Template {
	t.Helper()
	tpl, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return tpl
}

// wantProblem asserts that one of the problems mentions every fragment.
func wantProblem(t *testing.T, problems []string, fragments ...string) {
	t.Helper()
	for _, p := range problems {
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(p, f)
		}
		if ok {
			return
		}
	}
	t.Errorf("no problem mentions %q; got %q", fragments, problems)
}

func wantNone(t *testing.T, problems []string) {
	t.Helper()
	if len(problems) > 0 {
		t.Errorf("want no problems, got %q", problems)
	}
}

func TestCheckReferencesNamesDanglingTargets(t *testing.T) {
	tpl := mustParse(t, `
Parameters:
  Prefix: {Type: String}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Ref Missing
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Nope.Arn
        maxReceiveCount: !Sub "${Ghost}-${AWS::Region}-${!Literal}-${Queue.Arn}"
      KmsMasterKeyId: !GetAtt Prefix.Arn
      DeduplicationScope: !Sub ["${local}-${Phantom}", {local: !Ref AlsoMissing}]
`)
	problems := checkReferences(tpl)
	wantProblem(t, problems, "!Ref Missing")
	wantProblem(t, problems, "!GetAtt Nope.Arn")
	wantProblem(t, problems, "!Sub ${Ghost}")
	wantProblem(t, problems, "!GetAtt Prefix.Arn", "not a resource") // a parameter has no attributes
	wantProblem(t, problems, "!Sub ${Phantom}")
	wantProblem(t, problems, "!Ref AlsoMissing") // inside a Sub's local variable map
	for _, p := range problems {
		for _, fine := range []string{"AWS::Region", "Literal", "${local}", "Queue.Arn"} {
			if strings.Contains(p, fine) {
				t.Errorf("%s should resolve, got problem %q", fine, p)
			}
		}
	}
	if len(problems) != 6 {
		t.Errorf("want 6 problems, got %d: %q", len(problems), problems)
	}
}

func TestCheckReferencesMalformed(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !GetAtt JustAName
`)
	wantProblem(t, checkReferences(tpl), "Fn::GetAtt", "malformed", "JustAName")
}

func TestParseRejectsBadInput(t *testing.T) {
	for name, c := range map[string]struct{ doc, want string }{
		"not yaml":       {"Resources: [unclosed", "invalid YAML"},
		"not a mapping":  {"- a\n- b\n", "not a mapping"},
		"unknown type":   {"Resources:\n  X:\n    Type: AWS::Nope::Thing\n", `resource X has type "AWS::Nope::Thing"`},
		"unknown global": {"Globals:\n  Lambda: {Runtime: go1.x}\n", "Globals.Lambda is not a SAM Globals section"},
		"unknown field":  {"Resources:\n  X:\n    Type: AWS::SNS::Topic\n    Properties: {Colour: blue}\n", "Colour"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestParseSurvivesMalformedIntrinsics(t *testing.T) {
	// goformation's own handlers index these arguments unchecked; Parse must return, not crash.
	for name, value := range map[string]string{
		"empty sub list": "!Sub []",
		"long sub list":  "!Sub [a, {}, c]",
		"select on map":  "!Select [0, {a: b}]",
		"empty select":   "!Select []",
		"empty join":     "!Join []",
		"short if":       "!If [c]",
		"ref to list":    "!Ref [a, b]",
	} {
		t.Run(name, func(t *testing.T) {
			doc := "Resources:\n  Q:\n    Type: AWS::SNS::Topic\n    Properties:\n      DisplayName: " + value + "\n"
			tpl, err := Parse([]byte(doc))
			if err != nil {
				return // a clear error is fine
			}
			if name == "long sub list" || name == "ref to list" {
				wantProblem(t, checkReferences(tpl), "malformed")
			}
		})
	}
}

func TestCheckParameters(t *testing.T) {
	tpl := mustParse(t, `
Parameters:
  Prefix: {Type: String, Default: wxtpp/prod, AllowedPattern: "^/([a-z]+/)+$"}
  Days: {Type: Number, Default: 31, AllowedValues: [30, 60]}
  Fine: {Type: String, Default: "", AllowedPattern: "^(https://[a-z.]+)?$"}
  Broken: {Type: String, Default: x, AllowedPattern: "(unclosed"}
  NoDefault: {Type: String, AllowedPattern: "^wx$"}
`)
	problems := checkParameters(tpl)
	wantProblem(t, problems, "parameter Prefix", `Default "wxtpp/prod" does not match`)
	wantProblem(t, problems, "parameter Days", `Default "31" is not among AllowedValues`)
	wantProblem(t, problems, "parameter Broken", "does not compile")
	if len(problems) != 3 {
		t.Errorf("want 3 problems, got %q", problems)
	}
}

func TestCheckConditions(t *testing.T) {
	tpl := mustParse(t, `
Conditions:
  Real: !Equals [a, a]
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Condition: Imaginary
    Properties:
      DisplayName: !If [AlsoImaginary, x, y]
Outputs:
  O:
    Condition: Real
    Value: x
`)
	problems := checkConditions(tpl)
	wantProblem(t, problems, "Resources.Topic", "Imaginary")
	wantProblem(t, problems, "AlsoImaginary")
	if len(problems) != 2 {
		t.Errorf("want 2 problems, got %q", problems)
	}
}

func TestCheckNoCyclesFindsSamHttpApiCycle(t *testing.T) {
	// The layout the template deliberately avoids: an HttpApi event on the function plus an env var
	// naming the API.
	tpl := mustParse(t, `
Globals:
  Function:
    Environment:
      Variables:
        PUBLIC_BASE_URL: !Sub "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Events:
        Post:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: POST, Path: /x}
`)
	wantProblem(t, checkNoCycles(tpl), "circular dependency", "Api -> Fn -> Api")

	// The same env var with explicit V2 routes (what template.yaml does) has no cycle.
	tpl = mustParse(t, `
Globals:
  Function:
    Environment:
      Variables:
        PUBLIC_BASE_URL: !Sub "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: a, ProtocolType: HTTP}
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: .}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt Fn.Arn}
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: POST /x, Target: !Sub "integrations/${Integration}"}
`)
	wantNone(t, checkNoCycles(tpl))
}

func TestCheckNoCyclesDependsOn(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  A:
    Type: AWS::SNS::Topic
    DependsOn: B
  B:
    Type: AWS::SNS::Topic
    DependsOn: [A]
`)
	wantProblem(t, checkNoCycles(tpl), "A -> B -> A")
}

func TestCheckFunctionFolders(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  TicketFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties: {CodeUri: .}
  TwinFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties: {CodeUri: .}
  GhostFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties: {CodeUri: .}
  UntargetedFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties: {CodeUri: .}
  PlainFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/plain}
`)
	targets, err := ParseBuildTargets([]byte("B = go build\n" +
		"build-TicketFunction:\n\t$(B) ./functions/ticket\n" +
		"build-TwinFunction:\n\t$(B) ./functions/ticket\n" +
		"build-GhostFunction:\n\t$(B) ./functions/ghost\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := &project{tpl: tpl, targets: targets, funcDirs: []string{"ticket", "orphan", "plain"}}
	problems := checkFunctionFolders(p)
	wantProblem(t, problems, "functions/ticket", "2 functions", "TicketFunction", "TwinFunction")
	wantProblem(t, problems, "GhostFunction", "./functions/ghost", "does not exist")
	wantProblem(t, problems, "UntargetedFunction", "no build-UntargetedFunction target")
	wantProblem(t, problems, "functions/orphan has no AWS::Serverless::Function")
	for _, p := range problems {
		if strings.Contains(p, "plain") {
			t.Errorf("PlainFunction (CodeUri functions/plain) should be accepted, got %q", p)
		}
	}
}

func TestCheckBuildTargets(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  AFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: .}
`)
	targets, err := ParseBuildTargets([]byte("build-StaleFunction:\n\tgo build ./functions/stale\n"))
	if err != nil {
		t.Fatal(err)
	}
	problems := checkBuildTargets(&project{tpl: tpl, targets: targets})
	wantProblem(t, problems, "no build-AFunction target")
	wantProblem(t, problems, "AFunction: Metadata.BuildMethod", "want makefile")
	wantProblem(t, problems, "build-StaleFunction matches no function")
}

func TestCheckGlobals(t *testing.T) {
	tpl := mustParse(t, `
Globals:
  Function:
    Runtime: provided.al2023
    Timeuot: 10
`)
	problems := checkGlobals(tpl)
	wantProblem(t, problems, "Globals.Function.Timeuot")
	if len(problems) != 1 {
		t.Errorf("want 1 problem, got %q", problems)
	}
}

func TestCheckRuntimeUsesGlobals(t *testing.T) {
	tpl := mustParse(t, `
Globals:
  Function:
    Runtime: provided.al2023
    Architectures: [arm64]
    Handler: bootstrap
    Tracing: Active
Resources:
  GoodFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: .}
  PythonFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: ., Runtime: python3.12}
  X86Function:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: ., Architectures: [x86_64]}
`)
	problems := checkRuntime(tpl)
	wantProblem(t, problems, "PythonFunction", "Runtime", "python3.12")
	wantProblem(t, problems, "X86Function", "Architectures", "x86_64")
	if len(problems) != 2 {
		t.Errorf("want 2 problems (GoodFunction inherits Globals), got %q", problems)
	}

	// Without Globals nothing sets the runtime.
	tpl = mustParse(t, "Resources:\n  BareFunction:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: .}\n")
	wantProblem(t, checkRuntime(tpl), "BareFunction", "Runtime", "null")
}

func TestCheckEnvironment(t *testing.T) {
	tpl := mustParse(t, `
Globals:
  Function:
    Environment:
      Variables: {TABLE_NAME: t, QUEUE_URL: q}
Resources:
  LeakyFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Environment:
        Variables: {COMPONENT_SECRET: hunter2}
`)
	problems := checkEnvironment(tpl)
	wantProblem(t, problems, "LeakyFunction", "PUBLIC_BASE_URL", "not set")
	wantProblem(t, problems, "LeakyFunction", "COMPONENT_SECRET", "secret")
	for _, p := range problems {
		if strings.Contains(p, "TABLE_NAME") {
			t.Errorf("TABLE_NAME comes from Globals, got %q", p)
		}
	}
}

func TestCheckLogGroups(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  GoodFunction:
    Type: AWS::Serverless::Function
    DependsOn: GoodLogGroup
    Properties: {CodeUri: ., FunctionName: !Sub "${AWS::StackName}-good"}
  GoodLogGroup:
    Type: AWS::Logs::LogGroup
    Properties: {LogGroupName: !Sub "/aws/lambda/${AWS::StackName}-good", RetentionInDays: 30}
  RacyFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: .}
  RacyLogGroup:
    Type: AWS::Logs::LogGroup
    Properties: {LogGroupName: !Sub "/aws/lambda/${RacyFunction}"}
  EagerFunction:
    Type: AWS::Serverless::Function
    DependsOn: [GoodLogGroup]
    Properties: {CodeUri: ., FunctionName: !Sub "${AWS::StackName}-eager"}
  EagerLogGroup:
    Type: AWS::Logs::LogGroup
    Properties: {LogGroupName: !Sub "/aws/lambda/${AWS::StackName}-eager", RetentionInDays: 30}
  FixedFunction:
    Type: AWS::Serverless::Function
    DependsOn: [FixedLogGroup]
    Properties: {CodeUri: ., FunctionName: fixed}
  FixedLogGroup:
    Type: AWS::Logs::LogGroup
    Properties: {LogGroupName: /aws/lambda/fixed, RetentionInDays: 30}
  QuietFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: ., FunctionName: !Sub "${AWS::StackName}-quiet"}
`)
	problems := checkLogGroups(tpl)
	wantProblem(t, problems, "RacyFunction has no explicit FunctionName")
	wantProblem(t, problems, "log group RacyLogGroup has no RetentionInDays")
	wantProblem(t, problems, "EagerFunction does not DependsOn its log group EagerLogGroup")
	wantProblem(t, problems, "FixedFunction", `FunctionName "fixed"`, "${AWS::StackName}")
	wantProblem(t, problems, "QuietFunction has no AWS::Logs::LogGroup named /aws/lambda/${AWS::StackName}-quiet")
	if len(problems) != 5 {
		t.Errorf("want 5 problems (GoodFunction is fine), got %q", problems)
	}
}

func TestCheckTable(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PROVISIONED
      AttributeDefinitions:
        - {AttributeName: PK, AttributeType: S}
        - {AttributeName: SK, AttributeType: S}
        - {AttributeName: DueShard, AttributeType: S}
        - {AttributeName: DueAt, AttributeType: S}
      KeySchema:
        - {AttributeName: PK, KeyType: HASH}
      GlobalSecondaryIndexes:
        - IndexName: due
          KeySchema: [{AttributeName: DueShard, KeyType: HASH}, {AttributeName: DueAt, KeyType: RANGE}]
          Projection: {ProjectionType: ALL}
      TimeToLiveSpecification: {AttributeName: ExpiresAt, Enabled: true}
`)
	problems := checkTable(tpl)
	for _, want := range []string{
		"BillingMode", "KeySchema", "attribute DueAt", "index due does not project KEYS_ONLY",
		"TimeToLiveSpecification", "point-in-time recovery", "SSESpecification", "DeletionPolicy", "UpdateReplacePolicy",
	} {
		wantProblem(t, problems, "Table: ", want)
	}

	tpl = mustParse(t, "Resources:\n  One:\n    Type: AWS::DynamoDB::Table\n    Properties: {KeySchema: []}\n  Two:\n    Type: AWS::DynamoDB::Table\n    Properties: {KeySchema: []}\n")
	wantProblem(t, checkTable(tpl), "exactly one", "One", "Two")
}

func TestCheckQueues(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dead.Arn, maxReceiveCount: 5}
  Dead:
    Type: AWS::SQS::Queue
    Properties: {MessageRetentionPeriod: 345600}
  Loose:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: 360}
  WrongAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions: [{Name: QueueName, Value: !GetAtt Jobs.QueueName}]
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      EvaluationPeriods: 1
      AlarmActions: [arn:aws:sns:us-east-1:123456789012:t]
  Mail:
    Type: AWS::SNS::Subscription
    Properties: {Protocol: email, Endpoint: a@example.com, TopicArn: arn:aws:sns:us-east-1:123456789012:t}
`)
	problems := checkQueues(tpl)
	wantProblem(t, problems, "dead-letter queue Dead keeps messages")
	wantProblem(t, problems, "queue Loose has no RedrivePolicy")
	wantProblem(t, problems, "queue Jobs: VisibilityTimeout 30")
	wantProblem(t, problems, "dead-letter queue Dead has no AWS::CloudWatch::Alarm")
	wantProblem(t, problems, "e-mail subscription Mail has no Condition")

	// An SQS consumer with a long timeout raises the bar for the visibility timeout.
	tpl = mustParse(t, `
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 360
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dead.Arn, maxReceiveCount: 5}
  Dead:
    Type: AWS::SQS::Queue
    Properties: {MessageRetentionPeriod: 1209600}
  DeadAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions: [{Name: QueueName, Value: !GetAtt Dead.QueueName}]
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      EvaluationPeriods: 1
      AlarmActions: [arn:aws:sns:us-east-1:123456789012:t]
  SlowFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Timeout: 120
      Events:
        Jobs:
          Type: SQS
          Properties: {Queue: !GetAtt Jobs.Arn}
`)
	problems = checkQueues(tpl)
	wantProblem(t, problems, "queue Jobs: VisibilityTimeout 360", "(120 s)")
	if len(problems) != 1 {
		t.Errorf("want only the visibility problem, got %q", problems)
	}
}

// httpTemplate declares two routes behind one function, plus whatever extra is appended.
const httpTemplate = `
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: a, ProtocolType: HTTP}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Api, StageName: $default}
  PagesFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: .}
  PagesIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt PagesFunction.Arn}
  StartRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: GET /auth/start, Target: !Sub "integrations/${PagesIntegration}"}
  DebugRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: GET /debug, Target: !Sub "integrations/${PagesIntegration}"}
`

func TestRoutesTracesIntegrations(t *testing.T) {
	tpl := mustParse(t, httpTemplate+`
  EventFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Events:
        Cb: {Type: HttpApi, Properties: {Method: post, Path: "/wechat/{appid}/callback"}}
`)
	var got []string
	for _, r := range tpl.Routes() {
		got = append(got, r.Key()+" "+r.Source+" "+r.Function)
	}
	want := []string{
		"GET /debug DebugRoute PagesFunction",
		"GET /auth/start StartRoute PagesFunction",
		"POST /wechat/{appid}/callback EventFunction.Events.Cb EventFunction",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Routes() = %q, want %q", got, want)
	}
}

func TestCheckRoutes(t *testing.T) {
	tpl := mustParse(t, httpTemplate)
	problems := checkRoutes(tpl, map[string]string{
		"GET /auth/start":               "OtherFunction",
		"POST /wechat/component/events": "TicketFunction",
	})
	wantProblem(t, problems, `route "GET /debug" (DebugRoute) is not one of the expected routes`)
	wantProblem(t, problems, `route "GET /auth/start" (StartRoute) is served by PagesFunction, want OtherFunction`)
	wantProblem(t, problems, `expected route "POST /wechat/component/events" is missing`)
	wantProblem(t, problems, "stage Stage has no access logging")
}

func TestCheckInvokePermissions(t *testing.T) {
	tpl := mustParse(t, httpTemplate+`
  PagesPermission:
    Type: AWS::Lambda::Permission
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !Ref PagesFunction
      Principal: apigateway.amazonaws.com
      SourceArn: !Sub "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/*/GET/auth/*"
`)
	problems := checkInvokePermissions(tpl)
	wantProblem(t, problems, "PagesFunction", `"GET /debug"`, "DebugRoute")
	if len(problems) != 1 {
		t.Errorf("GET /auth/start is covered by GET/auth/*; want only the /debug problem, got %q", problems)
	}
}

func TestCheckIAM(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  GreedyFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Policies:
        - AmazonDynamoDBFullAccess
        - Statement:
            - Sid: AllTables
              Effect: Allow
              Action: dynamodb:*
              Resource: arn:aws:dynamodb:us-east-1:123456789012:table/t
            - Sid: AnyParam
              Effect: Allow
              Action: [ssm:GetParameters]
              Resource: "*"
            - Sid: AnyKey
              Effect: Allow
              Action: kms:Decrypt
              Resource: arn:aws:kms:us-east-1:123456789012:key/*
            - Sid: Everything
              Effect: Allow
              NotAction: iam:*
              Resource: "*"
            - Sid: DenyIsFine
              Effect: Deny
              Action: "*"
              Resource: "*"
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement: [{Effect: Allow, Action: "sqs:SendMessage", Resource: "*"}]
`)
	problems := checkIAM(tpl)
	wantProblem(t, problems, "GreedyFunction statement AllTables allows wildcard action dynamodb:*")
	wantProblem(t, problems, "GreedyFunction statement AnyParam grants", `Resource "*"`)
	wantProblem(t, problems, "GreedyFunction statement AnyParam grants SSM", "outside ${SecretsParameterPrefix}")
	wantProblem(t, problems, "GreedyFunction allows kms:Decrypt without a kms:ViaService condition")
	wantProblem(t, problems, "GreedyFunction statement Everything allows NotAction iam:*")
	wantProblem(t, problems, "GreedyFunction attaches managed policy AmazonDynamoDBFullAccess")
	wantProblem(t, problems, "Role grants [sqs:SendMessage]", `Resource "*"`)
	for _, p := range problems {
		if strings.Contains(p, "DenyIsFine") {
			t.Errorf("a Deny statement is not a grant, got %q", p)
		}
	}
}

func TestCheckOutputs(t *testing.T) {
	tpl := mustParse(t, httpTemplate+`
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  TicketEventsUrl: {Value: !Sub "https://x/wechat/component/event"}
  AuthStartUrl: {Value: !Join ["", ["https://x", "/auth/start?tenant="]]}
  MessageCallbackUrl: {Value: !Join ["", [!Sub "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}", "/wechat/$APPID$/callback"]]}
  TableName: {Value: !Ref Topic}
`)
	problems := checkOutputs(tpl)
	wantProblem(t, problems, "output TicketEventsUrl does not end in /wechat/component/events")
	wantProblem(t, problems, "output TicketEventsUrl points at /wechat/component/event, which no route")
	wantProblem(t, problems, "output MessageCallbackUrl points at /wechat/$APPID$/callback, which no route")
	wantProblem(t, problems, "output TableName", "want !Ref to an AWS::DynamoDB::Table")
	wantProblem(t, problems, "output JobsQueueUrl is missing")
	for _, p := range problems {
		if strings.Contains(p, "AuthStartUrl") {
			t.Errorf("AuthStartUrl is fine (GET /auth/start is a route), got %q", p)
		}
	}

	// With the route, the placeholder matches its path parameter.
	tpl = mustParse(t, httpTemplate+`
  CallbackRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: "POST /wechat/{appid}/callback", Target: !Sub "integrations/${PagesIntegration}"}
Outputs:
  MessageCallbackUrl: {Value: "https://x/wechat/$APPID$/callback"}
`)
	for _, p := range checkOutputs(tpl) {
		if strings.Contains(p, "MessageCallbackUrl") {
			t.Errorf("MessageCallbackUrl is served by POST /wechat/{appid}/callback, got %q", p)
		}
	}
}

func TestPathServed(t *testing.T) {
	for _, c := range []struct {
		route, path string
		want        bool
	}{
		{"/auth/start", "/auth/start", true},
		{"/auth/start", "/auth/starts", false},
		{"/wechat/{appid}/callback", "/wechat/$APPID$/callback", true},
		{"/wechat/{appid}/callback", "/wechat/wx0123/callback", true},
		{"/wechat/{appid}/callback", "/wechat//callback", false},
		{"/wechat/{appid}/callback", "/wechat/callback", false},
		{"/wechat/component/events", "/wechat/$APPID$/events", false},
	} {
		if got := pathServed(c.route, c.path); got != c.want {
			t.Errorf("pathServed(%q, %q) = %v, want %v", c.route, c.path, got, c.want)
		}
	}
}

func TestParseBuildTargets(t *testing.T) {
	mk := "# comment\n" +
		"FLAGS := -trimpath\n" +
		"GO_BUILD = go build $(FLAGS) \\\n  -o $(ARTIFACTS_DIR)/bootstrap\n" +
		".PHONY: build-AFunction\n" +
		"build-AFunction: prep\n" +
		"\t$(GO_BUILD) ./functions/a\n" +
		"\n" +
		"build-BFunction:\n" +
		"\t@echo no package here\n" +
		"other:\n" +
		"\tgo build ./functions/not-a-target\n"
	targets, err := ParseBuildTargets([]byte(mk))
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 2 {
		t.Fatalf("want 2 targets, got %+v", targets)
	}
	a, b := targets[0], targets[1]
	if a.LogicalID != "AFunction" || !slices.Equal(a.Dirs, []string{"a"}) {
		t.Errorf("first target = %+v, want AFunction building ./functions/a", a)
	}
	if want := "go build -trimpath    -o $(ARTIFACTS_DIR)/bootstrap ./functions/a"; len(a.Recipe) != 1 || a.Recipe[0] != want {
		t.Errorf("recipe = %q, want %q", a.Recipe, want)
	}
	if b.LogicalID != "BFunction" || len(b.Dirs) != 0 {
		t.Errorf("second target = %+v, want BFunction with no package", b)
	}

	if _, err := ParseBuildTargets([]byte("build-X:\n\ta\nbuild-X:\n\tb\n")); err == nil || !strings.Contains(err.Error(), "build-X defined twice") {
		t.Errorf("duplicate target: err = %v", err)
	}
}

func TestCheckJobsScaling(t *testing.T) {
	tpl := mustParse(t, `
Globals:
  Function: {Timeout: 100}
Resources:
  JobsQueue:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: 300}
  SideQueue:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: 360}
  JobsFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Timeout: 60
      ReservedConcurrentExecutions: 10
      Events:
        Jobs:
          Type: SQS
          Properties: {Queue: !GetAtt JobsQueue.Arn, ScalingConfig: {MaximumConcurrency: 20}}
  SideFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Events:
        Side:
          Type: SQS
          Properties: {Queue: !GetAtt SideQueue.Arn, ScalingConfig: {MaximumConcurrency: 5}}
`)
	problems := checkJobsScaling(tpl)
	wantProblem(t, problems, "queue JobsQueue: VisibilityTimeout 300 s is below 6x the timeout of its consumer JobsFunction (60 s)")
	wantProblem(t, problems, "queue SideQueue", "SideFunction (100 s)") // the Globals timeout counts
	wantProblem(t, problems, "JobsFunction: ReservedConcurrentExecutions 10 is below event Jobs's MaximumConcurrency 20")
	wantProblem(t, problems, "SideFunction: event Side caps concurrency at 5 but the function reserves none")
	if len(problems) != 4 {
		t.Errorf("want 4 problems, got %q", problems)
	}

	tpl = mustParse(t, `
Resources:
  JobsQueue:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: 360}
  JobsFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: ., Timeout: 60}
`)
	problems = checkJobsScaling(tpl)
	wantProblem(t, problems, "JobsFunction has no SQS event on JobsQueue")
	wantProblem(t, problems, "JobsFunction has no ReservedConcurrentExecutions")
}

func TestCheckRefreshSchedule(t *testing.T) {
	schedule := func(params, value string) *Template {
		return mustParse(t, "Parameters:\n"+params+`
Resources:
  RefreshFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Events:
        Schedule:
          Type: Schedule
          Properties: {Schedule: `+value+`}
`)
	}
	problems := checkRefreshSchedule(schedule(`  Sched: {Type: String, Default: rate(10 minutes), AllowedPattern: "^(rate|cron)\\(.+\\)$"}`, "!Ref Sched"))
	wantProblem(t, problems, `schedule "rate(10 minutes)" does not run at least every 5m0s`)
	wantProblem(t, problems, `accepts "rate(6 minutes)"`)
	wantProblem(t, problems, `accepts "rate(1 hour)"`)
	wantProblem(t, problems, `accepts "cron(0/5 * * * ? *)"`) // cannot be bounded: refused too

	wantProblem(t, checkRefreshSchedule(schedule(`  Sched: {Type: String, Default: rate(5 minutes)}`, "!Ref Sched")),
		"parameter Sched has no AllowedPattern")
	wantProblem(t, checkRefreshSchedule(schedule(`  Sched: {Type: String}`, "rate(1 hour)")),
		`schedule "rate(1 hour)" does not run at least every 5m0s`)
	wantNone(t, checkRefreshSchedule(schedule(`  Sched: {Type: String}`, "rate(2 minutes)")))
	wantNone(t, checkRefreshSchedule(schedule(
		`  Sched: {Type: String, Default: rate(5 minutes), AllowedPattern: "^rate\\((1 minute|[2-5] minutes)\\)$"}`, "!Ref Sched")))

	tpl := mustParse(t, "Resources:\n  RefreshFunction:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: .}\n")
	wantProblem(t, checkRefreshSchedule(tpl), "RefreshFunction has no Schedule event")
}

func TestCheckMonitoring(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: .}
  Board:
    Type: AWS::CloudWatch::Dashboard
    Properties:
      DashboardBody: !Sub |
        {"widgets": [
          {"type": "metric", "properties": {"metrics": [
            ["Wxtpp", "RefreshRuns", {"stat": "Sum"}],
            [".", "TokensRefreshed"],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${Queue.QueueName}"]
          ]}},
          {"type": "text", "properties": {"markdown": "hi"}}
        ]}
  LaxAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: Wxtpp
      MetricName: CampaignAppsFailed
      Statistic: Average
      Period: 3600
      EvaluationPeriods: 1
      Threshold: 1
      ComparisonOperator: GreaterThanThreshold
Outputs:
  DashboardUrl: {Value: !Sub "https://console.aws.amazon.com/cloudwatch/home#dashboards:name=${Queue}"}
`)
	problems := checkMonitoring(tpl)
	wantProblem(t, problems, "Board: widget 0 has no region")
	wantProblem(t, problems, "Board: does not graph Wxtpp MessagesReceived")
	wantProblem(t, problems, "Board: does not graph the errors of Fn")
	wantProblem(t, problems, "alarm LaxAlarm (CampaignAppsFailed): fires on GreaterThanThreshold 1")
	wantProblem(t, problems, "alarm LaxAlarm (CampaignAppsFailed): Average over 1 x 3600 s")
	wantProblem(t, problems, "alarm LaxAlarm (CampaignAppsFailed): TreatMissingData")
	wantProblem(t, problems, "alarm LaxAlarm (CampaignAppsFailed): has no AlarmActions")
	wantProblem(t, problems, "no AWS::CloudWatch::Alarm on Wxtpp CampaignStepFailures")
	wantProblem(t, problems, "no AWS::CloudWatch::Alarm on Wxtpp RefreshFailures")
	wantProblem(t, problems, "output DashboardUrl is missing or does not name the dashboard")
	for _, p := range problems {
		// "." repeats the namespace of the row above; the queue's depth is graphed.
		for _, fine := range []string{"Wxtpp RefreshRuns", "Wxtpp TokensRefreshed", "queue Queue"} {
			if strings.Contains(p, fine) {
				t.Errorf("%s is graphed, got %q", fine, p)
			}
		}
	}

	tpl = mustParse(t, "Resources:\n  Board:\n    Type: AWS::CloudWatch::Dashboard\n    Properties:\n      DashboardBody: !Sub '{\"widgets\": [}'\n")
	wantProblem(t, checkMonitoring(tpl), "Board: DashboardBody is not valid JSON")
	tpl = mustParse(t, "Resources:\n  Topic: {Type: AWS::SNS::Topic}\n")
	wantProblem(t, checkMonitoring(tpl), "declares no AWS::CloudWatch::Dashboard")
}

func TestCheckGrants(t *testing.T) {
	tpl := mustParse(t, `
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties: {KeySchema: []}
  Queue:
    Type: AWS::SQS::Queue
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Policies:
        - Statement:
            - Effect: Allow
              Action: dynamodb:Query
              Resource: [!GetAtt Table.Arn, !Sub "${Table.Arn}/index/due"]
            - Effect: Allow
              Action: sqs:SendMessage
              Resource: !GetAtt Queue.Arn
            - Effect: Deny
              Action: sqs:SendMessageBatch
              Resource: !GetAtt Queue.Arn
`)
	problems := checkGrants(tpl, map[string]map[string][]string{
		"Fn":    {"dynamodb:Query": {"Table", "Table/index/*"}, "sqs:SendMessage": {"Queue"}, "sqs:SendMessageBatch": {"Queue"}},
		"Other": {"dynamodb:GetItem": {"Table"}},
	})
	wantProblem(t, problems, "Fn is not granted dynamodb:Query on Table/index/*") // one index is not every index
	wantProblem(t, problems, "Fn is not granted sqs:SendMessageBatch on Queue")   // a Deny is not a grant
	wantProblem(t, problems, "Other is not granted dynamodb:GetItem on Table")
	if len(problems) != 3 {
		t.Errorf("want 3 problems (Query on Table and SendMessage on Queue are granted), got %q", problems)
	}
}
