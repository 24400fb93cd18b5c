package samtemplate

// Checks of the project's template.yaml and infra/sam.mk. Each check returns one message per problem,
// naming the offending resource, route, folder or target; checks_test.go proves each one fires.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/awslabs/goformation/v7/cloudformation/dynamodb"
	"github.com/awslabs/goformation/v7/cloudformation/global"
	"github.com/awslabs/goformation/v7/cloudformation/policies"

	"github.com/wxtpp/platform/infra/devstack"
	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/authpages"
	"github.com/wxtpp/platform/shared/jobs"
	"github.com/wxtpp/platform/shared/metrics"
)

// repoRoot is the project root as seen from this package's directory (go test runs tests there).
const repoRoot = "../.."

// expectedRoutes maps every HTTP route the platform serves to the function serving it.
var expectedRoutes = map[string]string{
	"POST /wechat/component/events": "TicketFunction",
	"POST /wechat/{appid}/callback": "MessageFunction",
	"GET /auth/start":               "AuthRedirectFunction",
	"GET /auth/callback":            "AuthRedirectFunction",
	"GET /oauth/{appid}/start":      "AuthRedirectFunction",
	"GET /oauth/callback":           "AuthRedirectFunction",
	// The gateway, for the provider's own services only: IAM-signed (checkRouteAuthorization).
	"GET /v1/authorizers":                         "GatewayFunction",
	"GET /v1/authorizers/{appid}":                 "GatewayFunction",
	"GET /v1/authorizers/{appid}/wechat/{path+}":  "GatewayFunction",
	"POST /v1/authorizers/{appid}/wechat/{path+}": "GatewayFunction",
	"GET /v1/component/wechat/{path+}":            "GatewayFunction",
	"POST /v1/component/wechat/{path+}":           "GatewayFunction",
}

// requiredEnv are the variables every function's config reads (see DESIGN.md, configuration).
var requiredEnv = []string{
	"TABLE_NAME", "QUEUE_URL", "DLQ_URL", "WECHAT_COMPONENT_APPID", "WECHAT_API_BASE", "WECHAT_MP_BASE",
	"SECRETS_PARAMETER_PREFIX", "PUBLIC_BASE_URL", "RETURN_URL_ALLOWLIST", "LOG_LEVEL",
}

// expectedReleaseTimeout is the timeout (seconds) the release function is expected to get; until it
// exists, JobsQueue's visibility timeout is checked against 6x this.
const expectedReleaseTimeout = 60

// project is everything the checks look at.
type project struct {
	tpl      *Template
	targets  []BuildTarget
	funcDirs []string // folder names under functions/
}

func loadProject(t *testing.T, root string) *project {
	t.Helper()
	tpl, err := Open(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "infra", "sam.mk"))
	if err != nil {
		t.Fatal(err)
	}
	targets, err := ParseBuildTargets(mk)
	if err != nil {
		t.Fatalf("infra/sam.mk: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatalf("list function folders: %v", err)
	}
	p := &project{tpl: tpl, targets: targets}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			p.funcDirs = append(p.funcDirs, e.Name())
		}
	}
	return p
}

func TestTemplate(t *testing.T) {
	p := loadProject(t, repoRoot)
	if len(p.tpl.Refs) == 0 {
		t.Fatal("goformation recorded no Ref/GetAtt/Sub at all: the intrinsic overrides are not being called")
	}
	checks := []struct {
		name  string
		check func(*project) []string
	}{
		{"parameters", func(p *project) []string { return checkParameters(p.tpl) }},
		{"references resolve", func(p *project) []string { return checkReferences(p.tpl) }},
		{"conditions resolve", func(p *project) []string { return checkConditions(p.tpl) }},
		{"no dependency cycle", func(p *project) []string { return checkNoCycles(p.tpl) }},
		{"one function per folder", checkFunctionFolders},
		{"build targets", checkBuildTargets},
		{"globals", func(p *project) []string { return checkGlobals(p.tpl) }},
		{"runtime", func(p *project) []string { return checkRuntime(p.tpl) }},
		{"environment", func(p *project) []string { return checkEnvironment(p.tpl) }},
		{"log groups", func(p *project) []string { return checkLogGroups(p.tpl) }},
		{"table", func(p *project) []string { return checkTable(p.tpl) }},
		{"queues and alarms", func(p *project) []string { return checkQueues(p.tpl) }},
		{"routes", func(p *project) []string { return checkRoutes(p.tpl, expectedRoutes) }},
		{"route authorization", func(p *project) []string { return checkRouteAuthorization(p.tpl) }},
		{"invoke permissions", func(p *project) []string { return checkInvokePermissions(p.tpl) }},
		{"iam", func(p *project) []string { return checkIAM(p.tpl) }},
		{"outputs", func(p *project) []string { return checkOutputs(p.tpl) }},
		{"jobs scaling", func(p *project) []string { return checkJobsScaling(p.tpl) }},
		{"refresh schedule", func(p *project) []string { return checkRefreshSchedule(p.tpl) }},
		{"dashboard and alarms", func(p *project) []string { return checkMonitoring(p.tpl) }},
		{"grants", func(p *project) []string { return checkGrants(p.tpl, expectedGrants) }},
		{"fixed egress", func(p *project) []string { return checkFixedEgress(p.tpl) }},
		{"console outputs and custom domain", func(p *project) []string { return checkConsoleOutputs(p.tpl) }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			for _, problem := range c.check(p) {
				t.Error(problem)
			}
		})
	}
}

// TestSamMkWithMake asks make itself what each build target runs, so syntax the Go parser of
// ParseBuildTargets glosses over (spaces instead of tabs, a typo in a variable) is caught.
func TestSamMkWithMake(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	p := loadProject(t, repoRoot)
	for _, target := range p.targets {
		name := "build-" + target.LogicalID
		cmd := exec.Command(makeBin, "--no-print-directory", "-n", "-f", "infra/sam.mk", name, "ARTIFACTS_DIR=/artifacts/"+target.LogicalID)
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("make -n %s: %v\n%s", name, err, out)
			continue
		}
		text := string(out)
		for _, want := range []string{
			"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "go build", "-trimpath", "-tags lambda.norpc",
			"-ldflags='-s -w'", "-o /artifacts/" + target.LogicalID + "/bootstrap",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("make -n %s does not run %q; it runs:\n%s", name, want, text)
			}
		}
		for _, dir := range target.Dirs {
			if !strings.Contains(text, "./functions/"+dir) {
				t.Errorf("make -n %s does not build ./functions/%s; it runs:\n%s", name, dir, text)
			}
		}
	}
}

func functions(tpl *Template) []string { return tpl.LogicalIDs("AWS::Serverless::Function") }

// checkParameters: CloudFormation rejects a stack whose parameter defaults break their own
// AllowedPattern or AllowedValues, but only at deploy time.
func checkParameters(tpl *Template) []string {
	var problems []string
	params := tpl.Section("Parameters")
	for _, name := range sortedKeys(params) {
		param, _ := params[name].(map[string]any)
		def, hasDefault := param["Default"]
		if !hasDefault {
			continue
		}
		text := fmt.Sprint(def)
		if pattern, ok := param["AllowedPattern"].(string); ok {
			// CloudFormation anchors the pattern to the whole value.
			re, err := regexp.Compile("^(?:" + pattern + ")$")
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("parameter %s: AllowedPattern %q does not compile: %v", name, pattern, err))
			case !re.MatchString(text):
				problems = append(problems, fmt.Sprintf("parameter %s: Default %q does not match AllowedPattern %q", name, text, pattern))
			}
		}
		if allowed, ok := param["AllowedValues"].([]any); ok && !slices.ContainsFunc(allowed, func(v any) bool { return fmt.Sprint(v) == text }) {
			problems = append(problems, fmt.Sprintf("parameter %s: Default %q is not among AllowedValues %s", name, text, compact(allowed)))
		}
	}
	return problems
}

func checkReferences(tpl *Template) []string {
	var problems []string
	seen := map[string]bool{}
	for _, ref := range tpl.Refs {
		var problem string
		switch {
		case ref.Malformed != "":
			problem = ref.String()
		case ref.IsAttribute() && tpl.Resource(ref.Target) == nil:
			problem = fmt.Sprintf("%s: %q is not a resource declared in the template", ref, ref.Target)
		case !ref.IsAttribute() && !tpl.Declared(ref.Target):
			problem = fmt.Sprintf("%s: %q is not a declared resource, parameter or pseudo parameter", ref, ref.Target)
		}
		if problem != "" && !seen[problem] {
			seen[problem] = true
			problems = append(problems, problem)
		}
	}
	sort.Strings(problems)
	return problems
}

// checkConditions: every Condition on a resource or output, and every Fn::If, names a declared condition.
func checkConditions(tpl *Template) []string {
	declared := tpl.Section("Conditions")
	var problems []string
	check := func(where string, name any) {
		s, _ := name.(string)
		if _, ok := declared[s]; !ok {
			problems = append(problems, fmt.Sprintf("%s uses condition %v, which is not declared under Conditions", where, compact(name)))
		}
	}
	for _, section := range []string{"Resources", "Outputs"} {
		sec := tpl.Section(section)
		for _, id := range sortedKeys(sec) {
			decl, _ := sec[id].(map[string]any)
			if c, ok := decl["Condition"]; ok {
				check(section+"."+id, c)
			}
			walkMaps(decl, func(m map[string]any) {
				if args, ok := m["Fn::If"].([]any); ok && len(args) == 3 {
					check(section+"."+id+" (Fn::If)", args[0])
				}
			})
		}
	}
	walkMaps(tpl.Section("Globals"), func(m map[string]any) {
		if args, ok := m["Fn::If"].([]any); ok && len(args) == 3 {
			check("Globals (Fn::If)", args[0])
		}
	})
	return problems
}

func walkMaps(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
		for _, k := range sortedKeys(x) {
			walkMaps(x[k], fn)
		}
	case []any:
		for _, e := range x {
			walkMaps(e, fn)
		}
	}
}

// checkNoCycles builds the dependency graph CloudFormation will see after the SAM transform and
// reports a cycle. Besides explicit references and DependsOn it models what SAM adds: Globals apply
// to every function, and an Api/HttpApi event makes the API depend on the function (SAM writes the
// function ARN into the API definition), which is what makes a function env var naming its own API
// circular.
func checkNoCycles(tpl *Template) []string {
	edges := map[string]map[string]bool{}
	add := func(from, to string) {
		if edges[from] == nil {
			edges[from] = map[string]bool{}
		}
		edges[from][to] = true
	}
	resources := tpl.Section("Resources")
	isNode := func(id string) bool {
		_, ok := resources[id]
		return ok || id == "ServerlessHttpApi" || id == "ServerlessRestApi"
	}
	for _, id := range sortedKeys(resources) {
		decl, _ := resources[id].(map[string]any)
		refs := RefsIn(decl["Properties"])
		if tpl.Type(id) == "AWS::Serverless::Function" {
			refs = append(refs, RefsIn(tpl.Section("Globals")["Function"])...)
			events, _ := tpl.Properties(id)["Events"].(map[string]any)
			for _, name := range sortedKeys(events) {
				ev, _ := events[name].(map[string]any)
				props, _ := ev["Properties"].(map[string]any)
				api := ""
				switch ev["Type"] {
				case "HttpApi":
					api = "ServerlessHttpApi"
					if r := RefsIn(props["ApiId"]); len(r) > 0 {
						api = r[0].Target
					}
				case "Api":
					api = "ServerlessRestApi"
					if r := RefsIn(props["RestApiId"]); len(r) > 0 {
						api = r[0].Target
					}
				}
				if api != "" {
					add(api, id)
				}
			}
		}
		for _, r := range refs {
			if isNode(r.Target) && r.Target != id {
				add(id, r.Target)
			}
		}
		for _, dep := range asList(decl["DependsOn"]) {
			if s, ok := dep.(string); ok && isNode(s) {
				add(id, s)
			}
		}
	}
	// Depth-first search; a grey node met again closes a cycle.
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var cycle []string
	var visit func(string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, m := range sortedKeys(edges[n]) {
			switch color[m] {
			case grey:
				i := slices.Index(stack, m)
				cycle = append(append([]string{}, stack[i:]...), m)
				return true
			case white:
				if visit(m) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range sortedKeys(edges) {
		if color[n] == white && visit(n) {
			return []string{"circular dependency: " + strings.Join(cycle, " -> ") + " (an arrow means \"needs\")"}
		}
	}
	return nil
}

// buildDir returns the functions/<dir> a function is built from, or a problem.
func buildDir(p *project, fn string) (string, string) {
	meta, _ := p.tpl.Resource(fn)["Metadata"].(map[string]any)
	if meta["BuildMethod"] == "makefile" {
		for _, target := range p.targets {
			if target.LogicalID == fn {
				if len(target.Dirs) != 1 {
					return "", fmt.Sprintf("%s: target build-%s in infra/sam.mk builds %d ./functions/<dir> packages %v, want exactly one", fn, fn, len(target.Dirs), target.Dirs)
				}
				return target.Dirs[0], ""
			}
		}
		return "", fmt.Sprintf("%s: BuildMethod makefile but infra/sam.mk has no build-%s target", fn, fn)
	}
	codeURI, _ := p.tpl.FunctionProperty(fn, "CodeUri").(string)
	dir, ok := strings.CutPrefix(filepath.ToSlash(filepath.Clean(codeURI)), "functions/")
	if !ok || dir == "" || strings.Contains(dir, "/") {
		return "", fmt.Sprintf("%s: neither BuildMethod makefile nor a CodeUri of functions/<dir> (CodeUri %q)", fn, codeURI)
	}
	return dir, ""
}

func checkFunctionFolders(p *project) []string {
	var problems []string
	byDir := map[string][]string{}
	for _, fn := range functions(p.tpl) {
		dir, problem := buildDir(p, fn)
		if problem != "" {
			problems = append(problems, problem)
			continue
		}
		byDir[dir] = append(byDir[dir], fn)
		if !slices.Contains(p.funcDirs, dir) {
			problems = append(problems, fmt.Sprintf("%s is built from ./functions/%s, which does not exist", fn, dir))
		}
	}
	for _, dir := range p.funcDirs {
		switch fns := byDir[dir]; len(fns) {
		case 0:
			problems = append(problems, fmt.Sprintf("functions/%s has no AWS::Serverless::Function in template.yaml (or no build target in infra/sam.mk)", dir))
		case 1:
		default:
			problems = append(problems, fmt.Sprintf("functions/%s is built by %d functions %v, want one", dir, len(fns), fns))
		}
	}
	return problems
}

func checkBuildTargets(p *project) []string {
	var problems []string
	fns := functions(p.tpl)
	for _, fn := range fns {
		if !slices.ContainsFunc(p.targets, func(t BuildTarget) bool { return t.LogicalID == fn }) {
			problems = append(problems, fmt.Sprintf("infra/sam.mk has no build-%s target for function %s", fn, fn))
		}
		meta, _ := p.tpl.Resource(fn)["Metadata"].(map[string]any)
		if meta["BuildMethod"] != "makefile" {
			problems = append(problems, fmt.Sprintf("%s: Metadata.BuildMethod is %v, want makefile", fn, compact(meta["BuildMethod"])))
		}
	}
	for _, target := range p.targets {
		if !slices.Contains(fns, target.LogicalID) {
			problems = append(problems, fmt.Sprintf("infra/sam.mk target build-%s matches no function in template.yaml", target.LogicalID))
		}
	}
	return problems
}

// globalsSchema lists the properties SAM accepts in each Globals section, per goformation's schema.
// goformation decodes Globals leniently, so a misspelt key would otherwise pass unnoticed.
var globalsSchema = map[string]any{
	"Function":    global.Function{},
	"HttpApi":     global.HttpApi{},
	"Api":         global.Api{},
	"SimpleTable": global.SimpleTable{},
}

func checkGlobals(tpl *Template) []string {
	var problems []string
	globals := tpl.Section("Globals")
	for _, section := range sortedKeys(globals) {
		schema, ok := globalsSchema[section]
		if !ok {
			problems = append(problems, fmt.Sprintf("Globals.%s is not a SAM Globals section", section))
			continue
		}
		known := map[string]bool{}
		typ := reflect.TypeOf(schema)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			known[name] = true
		}
		props, _ := globals[section].(map[string]any)
		for _, key := range sortedKeys(props) {
			if !known[key] {
				problems = append(problems, fmt.Sprintf("Globals.%s.%s is not a property SAM accepts there", section, key))
			}
		}
	}
	return problems
}

func checkRuntime(tpl *Template) []string {
	var problems []string
	want := map[string]any{
		"Runtime":       "provided.al2023",
		"Architectures": []any{"arm64"},
		"Handler":       "bootstrap",
		"Tracing":       "Active",
	}
	fns := functions(tpl)
	if len(fns) == 0 {
		problems = append(problems, "template.yaml declares no AWS::Serverless::Function")
	}
	for _, fn := range fns {
		for _, prop := range sortedKeys(want) {
			got := tpl.FunctionProperty(fn, prop)
			if compact(got) != compact(want[prop]) {
				problems = append(problems, fmt.Sprintf("%s: %s is %s (own value or Globals.Function), want %s", fn, prop, compact(got), compact(want[prop])))
			}
		}
	}
	return problems
}

// envVars merges Globals.Function and the function's own Environment.Variables, as SAM does.
func envVars(tpl *Template, fn string) map[string]any {
	vars := map[string]any{}
	for _, env := range []any{tpl.GlobalFunctionProperty("Environment"), tpl.Properties(fn)["Environment"]} {
		m, _ := env.(map[string]any)
		v, _ := m["Variables"].(map[string]any)
		for k, val := range v {
			vars[k] = val
		}
	}
	return vars
}

var secretLooking = regexp.MustCompile(`(?i)secret|token|aes|password|signing|private`)

func checkEnvironment(tpl *Template) []string {
	var problems []string
	for _, fn := range functions(tpl) {
		vars := envVars(tpl, fn)
		for _, name := range requiredEnv {
			if _, ok := vars[name]; !ok {
				problems = append(problems, fmt.Sprintf("%s: environment variable %s is not set", fn, name))
			}
		}
		// Secrets come from SSM at cold start, never from the template.
		for _, name := range sortedKeys(vars) {
			if name != "SECRETS_PARAMETER_PREFIX" && secretLooking.MatchString(name) {
				problems = append(problems, fmt.Sprintf("%s: environment variable %s looks like a secret; secrets belong in SSM under SecretsParameterPrefix", fn, name))
			}
		}
	}
	return problems
}

// checkLogGroups: every function has an explicit FunctionName (per stack), a log group with a retention named
// /aws/lambda/<that name>, and DependsOn that group. A group named from !Ref of the function can only be created
// after the function, which may already have logged: Lambda then creates the group itself (kept forever) and
// the stack's LogGroup fails with "already exists".
func checkLogGroups(tpl *Template) []string {
	var problems []string
	byName := map[string]string{}
	for _, id := range tpl.LogicalIDs("AWS::Logs::LogGroup") {
		props := tpl.Properties(id)
		if _, ok := props["RetentionInDays"]; !ok {
			problems = append(problems, fmt.Sprintf("log group %s has no RetentionInDays", id))
		}
		if name := subText(props["LogGroupName"]); name != "" {
			byName[name] = id
		}
	}
	for _, fn := range functions(tpl) {
		name := subText(tpl.Properties(fn)["FunctionName"])
		if name == "" {
			problems = append(problems, fmt.Sprintf("%s has no explicit FunctionName (a string or !Sub string), so its log group cannot be created before it", fn))
			continue
		}
		if !strings.Contains(name, "${AWS::StackName}") {
			problems = append(problems, fmt.Sprintf("%s: FunctionName %q does not contain ${AWS::StackName}; two stacks in one account and region would collide", fn, name))
		}
		group, ok := byName["/aws/lambda/"+name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s has no AWS::Logs::LogGroup named /aws/lambda/%s", fn, name))
			continue
		}
		if !slices.Contains(asList(tpl.Resource(fn)["DependsOn"]), any(group)) {
			problems = append(problems, fmt.Sprintf("%s does not DependsOn its log group %s, so it may log before the group exists", fn, group))
		}
	}
	return problems
}

// subText is the text of a plain string or of a !Sub string; "" for anything else.
func subText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if s, ok := x[FnSub].(string); ok && len(x) == 1 {
			return s
		}
	}
	return ""
}

func checkTable(tpl *Template) []string {
	ids := tpl.LogicalIDs("AWS::DynamoDB::Table")
	if len(ids) != 1 {
		return []string{fmt.Sprintf("want exactly one AWS::DynamoDB::Table, found %d %v", len(ids), ids)}
	}
	id := ids[0]
	tbl, ok := tpl.CFN.Resources[id].(*dynamodb.Table)
	if !ok {
		return []string{fmt.Sprintf("%s: goformation did not decode it as a DynamoDB table", id)}
	}
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, id+": "+fmt.Sprintf(format, args...)) }

	if tbl.BillingMode == nil || *tbl.BillingMode != "PAY_PER_REQUEST" {
		fail("BillingMode is %s, want PAY_PER_REQUEST", compact(tbl.BillingMode))
	}
	if got := keySchema(tbl.KeySchema); got != "PK HASH, SK RANGE" {
		fail("KeySchema is %q, want \"PK HASH, SK RANGE\"", got)
	}
	attrs := map[string]string{}
	for _, a := range tbl.AttributeDefinitions {
		attrs[a.AttributeName] = a.AttributeType
	}
	for name, typ := range map[string]string{"PK": "S", "SK": "S", "DueShard": "S", "DueAt": "N"} {
		if attrs[name] != typ {
			fail("attribute %s has type %q, want %q", name, attrs[name], typ)
		}
	}
	var due *dynamodb.Table_GlobalSecondaryIndex
	for i := range tbl.GlobalSecondaryIndexes {
		if tbl.GlobalSecondaryIndexes[i].IndexName == "due" {
			due = &tbl.GlobalSecondaryIndexes[i]
		}
	}
	if due == nil {
		fail("no global secondary index named due")
	} else {
		if got := keySchema(due.KeySchema); got != "DueShard HASH, DueAt RANGE" {
			fail("index due has keys %q, want \"DueShard HASH, DueAt RANGE\"", got)
		}
		if due.Projection == nil || due.Projection.ProjectionType == nil || *due.Projection.ProjectionType != "KEYS_ONLY" {
			fail("index due does not project KEYS_ONLY (the refresher reads only keys from it)")
		}
	}
	if ttl := tbl.TimeToLiveSpecification; ttl == nil || !ttl.Enabled || ttl.AttributeName == nil || *ttl.AttributeName != "PurgeAt" {
		fail("TimeToLiveSpecification is %s, want PurgeAt enabled", compact(ttl))
	}
	if pitr := tbl.PointInTimeRecoverySpecification; pitr == nil || pitr.PointInTimeRecoveryEnabled == nil || !*pitr.PointInTimeRecoveryEnabled {
		fail("point-in-time recovery is not enabled")
	}
	if sse := tbl.SSESpecification; sse == nil || !sse.SSEEnabled {
		fail("SSESpecification.SSEEnabled is not true")
	}
	if tbl.AWSCloudFormationDeletionPolicy != policies.DeletionPolicy("Retain") {
		fail("DeletionPolicy is %q, want Retain", tbl.AWSCloudFormationDeletionPolicy)
	}
	if tbl.AWSCloudFormationUpdateReplacePolicy != policies.UpdateReplacePolicy("Retain") {
		fail("UpdateReplacePolicy is %q, want Retain", tbl.AWSCloudFormationUpdateReplacePolicy)
	}
	return problems
}

func keySchema(ks []dynamodb.Table_KeySchema) string {
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = k.AttributeName + " " + k.KeyType
	}
	return strings.Join(parts, ", ")
}

// number reads a numeric raw value (YAML may give int or string).
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		var f float64
		_, err := fmt.Sscan(x, &f)
		return f, err == nil
	}
	return 0, false
}

func checkQueues(tpl *Template) []string {
	var problems []string
	queues := tpl.LogicalIDs("AWS::SQS::Queue")
	dlqs := map[string]bool{}
	for _, q := range queues {
		redrive, _ := tpl.Properties(q)["RedrivePolicy"].(map[string]any)
		for _, r := range RefsIn(redrive["deadLetterTargetArn"]) {
			if r.IsAttribute() && r.Attr == "Arn" && tpl.Type(r.Target) == "AWS::SQS::Queue" {
				dlqs[r.Target] = true
			}
		}
	}
	for _, q := range queues {
		props := tpl.Properties(q)
		if dlqs[q] {
			if n, _ := number(props["MessageRetentionPeriod"]); n != 14*24*3600 {
				problems = append(problems, fmt.Sprintf("dead-letter queue %s keeps messages %v s, want 1209600 (14 days)", q, compact(props["MessageRetentionPeriod"])))
			}
			continue
		}
		redrive, _ := props["RedrivePolicy"].(map[string]any)
		target := RefsIn(redrive["deadLetterTargetArn"])
		if len(target) != 1 || !dlqs[target[0].Target] {
			problems = append(problems, fmt.Sprintf("queue %s has no RedrivePolicy with deadLetterTargetArn !GetAtt <dead-letter queue>.Arn", q))
		}
		if n, ok := number(redrive["maxReceiveCount"]); redrive != nil && (!ok || n < 1) {
			problems = append(problems, fmt.Sprintf("queue %s: RedrivePolicy.maxReceiveCount is %s, want a positive number", q, compact(redrive["maxReceiveCount"])))
		}
		// Lambda's SQS integration wants the visibility timeout >= 6x the consumer's timeout.
		consumerTimeout := float64(expectedReleaseTimeout)
		for _, fn := range functions(tpl) {
			events, _ := tpl.Properties(fn)["Events"].(map[string]any)
			for _, ev := range events {
				e, _ := ev.(map[string]any)
				eprops, _ := e["Properties"].(map[string]any)
				if e["Type"] != "SQS" || !slices.ContainsFunc(RefsIn(eprops["Queue"]), func(r Reference) bool { return r.Target == q }) {
					continue
				}
				if to, ok := number(tpl.FunctionProperty(fn, "Timeout")); ok && to > consumerTimeout {
					consumerTimeout = to
				}
			}
		}
		if vt, _ := number(props["VisibilityTimeout"]); vt < 6*consumerTimeout {
			problems = append(problems, fmt.Sprintf("queue %s: VisibilityTimeout %v s is below 6x its consumer timeout (%v s)", q, compact(props["VisibilityTimeout"]), consumerTimeout))
		}
	}
	for _, dlq := range sortedKeys(dlqs) {
		if !hasEmptinessAlarm(tpl, dlq) {
			problems = append(problems, fmt.Sprintf("dead-letter queue %s has no AWS::CloudWatch::Alarm on ApproximateNumberOfMessagesVisible > 0 with an action", dlq))
		}
	}
	for _, sub := range tpl.LogicalIDs("AWS::SNS::Subscription") {
		if tpl.Properties(sub)["Protocol"] == "email" && tpl.Resource(sub)["Condition"] == nil {
			problems = append(problems, fmt.Sprintf("e-mail subscription %s has no Condition; an empty AlarmEmail would fail the deploy", sub))
		}
	}
	return problems
}

func hasEmptinessAlarm(tpl *Template, dlq string) bool {
	for _, id := range tpl.LogicalIDs("AWS::CloudWatch::Alarm") {
		props := tpl.Properties(id)
		if props["Namespace"] != "AWS/SQS" || props["MetricName"] != "ApproximateNumberOfMessagesVisible" {
			continue
		}
		onQueue := false
		for _, d := range asList(props["Dimensions"]) {
			dim, _ := d.(map[string]any)
			if dim["Name"] != "QueueName" {
				continue
			}
			for _, r := range RefsIn(dim["Value"]) {
				onQueue = onQueue || (r.Target == dlq && r.Attr == "QueueName")
			}
		}
		threshold, _ := number(props["Threshold"])
		fires := (props["ComparisonOperator"] == "GreaterThanThreshold" && threshold == 0) ||
			(props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" && threshold == 1)
		if onQueue && fires && len(asList(props["AlarmActions"])) > 0 {
			return true
		}
	}
	return false
}

func checkRoutes(tpl *Template, expected map[string]string) []string {
	var problems []string
	seen := map[string]bool{}
	for _, r := range tpl.Routes() {
		key := r.Key()
		want, ok := expected[key]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("route %q (%s) is not one of the expected routes", key, r.Source))
		case seen[key]:
			problems = append(problems, fmt.Sprintf("route %q (%s) is declared twice", key, r.Source))
		case r.Function == "":
			problems = append(problems, fmt.Sprintf("route %q (%s) does not lead to a function through its integration", key, r.Source))
		case r.Function != want:
			problems = append(problems, fmt.Sprintf("route %q (%s) is served by %s, want %s", key, r.Source, r.Function, want))
		}
		seen[key] = true
	}
	for _, key := range sortedKeys(expected) {
		if !seen[key] {
			problems = append(problems, fmt.Sprintf("expected route %q is missing", key))
		}
	}
	for _, stage := range tpl.LogicalIDs("AWS::ApiGatewayV2::Stage") {
		logs, _ := tpl.Properties(stage)["AccessLogSettings"].(map[string]any)
		if logs["DestinationArn"] == nil {
			problems = append(problems, fmt.Sprintf("HTTP API stage %s has no access logging", stage))
		}
	}
	return problems
}

// checkInvokePermissions: API Gateway may invoke every function behind an explicit route, for that
// route only. (SAM events create their own permissions.)
func checkInvokePermissions(tpl *Template) []string {
	var problems []string
	for _, r := range tpl.Routes() {
		if tpl.Type(r.Source) != "AWS::ApiGatewayV2::Route" || r.Function == "" {
			continue
		}
		// Path parameters must be granted with "*" in the source ARN, as SAM does.
		path := regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(r.Path, "x")
		invoked := "*/" + r.Method + path
		allowed := false
		for _, perm := range tpl.LogicalIDs("AWS::Lambda::Permission") {
			props := tpl.Properties(perm)
			if props["Principal"] != "apigateway.amazonaws.com" || props["Action"] != "lambda:InvokeFunction" {
				continue
			}
			if !slices.ContainsFunc(RefsIn(props["FunctionName"]), func(ref Reference) bool { return ref.Target == r.Function }) {
				continue
			}
			src, _ := props["SourceArn"].(map[string]any)[FnSub].(string)
			_, scope, ok := strings.Cut(src, "}/") // after ${HttpApi}/
			if ok && globMatch(scope, invoked) {
				allowed = true
			}
		}
		if !allowed {
			problems = append(problems, fmt.Sprintf("no AWS::Lambda::Permission lets API Gateway invoke %s for route %q (%s)", r.Function, r.Key(), r.Source))
		}
	}
	return problems
}

// globMatch matches an execute-api source ARN suffix in which "*" stands for any text.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(s)
}

// dataServices are the services whose grants must name resources.
var dataServices = []string{"dynamodb", "ssm", "sqs"}

func checkIAM(tpl *Template) []string {
	var problems []string
	for _, st := range tpl.PolicyStatements() {
		where := st.Owner
		if st.Sid != "" {
			where += " statement " + st.Sid
		}
		if st.Effect != "Allow" {
			continue
		}
		touchesData := false
		for _, a := range st.Actions {
			service, op, _ := strings.Cut(strings.ToLower(a), ":")
			switch {
			case strings.HasPrefix(a, "!"):
				problems = append(problems, fmt.Sprintf("%s allows NotAction %s: grant actions explicitly", where, a[1:]))
			case a == "*":
				problems = append(problems, fmt.Sprintf("%s allows every action (\"*\")", where))
				touchesData = true
			case slices.Contains(dataServices, service):
				touchesData = true
				if strings.Contains(op, "*") {
					problems = append(problems, fmt.Sprintf("%s allows wildcard action %s", where, a))
				}
			}
		}
		if touchesData {
			for _, res := range st.Resources {
				if res == "*" {
					problems = append(problems, fmt.Sprintf("%s grants %v on Resource \"*\"", where, st.Actions))
				}
			}
		}
		if slices.ContainsFunc(st.Actions, func(a string) bool { return strings.HasPrefix(strings.ToLower(a), "ssm:") }) {
			for _, res := range st.Resources {
				if !strings.Contains(compact(res), "${SecretsParameterPrefix}") {
					problems = append(problems, fmt.Sprintf("%s grants SSM on %s, outside ${SecretsParameterPrefix}", where, compact(res)))
				}
			}
		}
	}
	// Statements in SAM Policies carry their Condition; kms:Decrypt must be limited to calls made by SSM.
	walkResources(tpl, func(owner string, m map[string]any) {
		if m["Effect"] != "Allow" || !slices.ContainsFunc(asList(m["Action"]), func(a any) bool { return a == "kms:Decrypt" }) {
			return
		}
		if !strings.Contains(compact(m["Condition"]), "kms:ViaService") {
			problems = append(problems, fmt.Sprintf("%s allows kms:Decrypt without a kms:ViaService condition", owner))
		}
	})
	// Broad AWS managed policies attached by name (SAM Policies) or ARN (roles).
	broad := func(s string) bool {
		return strings.Contains(s, "FullAccess") || strings.Contains(s, "AdministratorAccess")
	}
	for _, fn := range functions(tpl) {
		for _, pol := range asList(tpl.Properties(fn)["Policies"]) {
			if s, ok := pol.(string); ok && broad(s) {
				problems = append(problems, fmt.Sprintf("%s attaches managed policy %s", fn, s))
			}
		}
	}
	for _, role := range tpl.LogicalIDs("AWS::IAM::Role") {
		for _, s := range stringLeaves(tpl.Properties(role)["ManagedPolicyArns"]) {
			if broad(s) {
				problems = append(problems, fmt.Sprintf("%s attaches managed policy %s", role, s))
			}
		}
	}
	return problems
}

func walkResources(tpl *Template, fn func(owner string, m map[string]any)) {
	resources := tpl.Section("Resources")
	for _, id := range sortedKeys(resources) {
		walkMaps(resources[id], func(m map[string]any) { fn(id, m) })
	}
}

// stringLeaves lists the string literals in a raw value (intrinsic arguments included).
func stringLeaves(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringLeaves(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, k := range sortedKeys(x) {
			out = append(out, stringLeaves(x[k])...)
		}
		return out
	}
	return nil
}

func checkOutputs(tpl *Template) []string {
	var problems []string
	outputs := tpl.Section("Outputs")
	// The message callback URL (/wechat/$APPID$/callback) joins when its function does.
	urls := map[string]string{
		"TicketEventsUrl":    "/wechat/component/events",
		"MessageCallbackUrl": "/wechat/$APPID$/callback",
	}
	// Authorization links are signed by the operator CLI under PublicBaseUrl; the console wants the domain.
	for _, name := range []string{"PublicBaseUrl", "AuthStartDomain"} {
		if _, ok := outputs[name].(map[string]any); !ok {
			problems = append(problems, fmt.Sprintf("output %s is missing", name))
		}
	}
	for _, name := range sortedKeys(urls) {
		out, ok := outputs[name].(map[string]any)
		if !ok {
			problems = append(problems, fmt.Sprintf("output %s is missing", name))
			continue
		}
		if !slices.ContainsFunc(stringLeaves(out["Value"]), func(s string) bool { return strings.HasSuffix(s, urls[name]) }) {
			problems = append(problems, fmt.Sprintf("output %s does not end in %s: %s", name, urls[name], compact(out["Value"])))
		}
	}
	// A URL pasted into the WeChat console must lead somewhere: its path must be a route of the template.
	routes := tpl.Routes()
	for _, name := range sortedKeys(outputs) {
		if name == "DashboardUrl" {
			continue // a link to the AWS console, not one of the platform's URLs
		}
		out, _ := outputs[name].(map[string]any)
		for _, leaf := range stringLeaves(out["Value"]) {
			path := leaf
			if i := strings.Index(leaf, "://"); i >= 0 {
				_, path, _ = strings.Cut(leaf[i+3:], "/")
				path = "/" + path
			}
			path, _, _ = strings.Cut(path, "?")
			if !strings.HasPrefix(path, "/") || path == "/" || slices.ContainsFunc(routes, func(r Route) bool { return pathServed(r.Path, path) }) {
				continue
			}
			// A base URL (GatewayBaseUrl: .../v1) leads to the routes under it.
			if strings.HasSuffix(name, "BaseUrl") && slices.ContainsFunc(routes, func(r Route) bool { return strings.HasPrefix(r.Path, path+"/") }) {
				continue
			}
			problems = append(problems, fmt.Sprintf("output %s points at %s, which no route of the template serves", name, path))
		}
	}
	refs := map[string]string{"TableName": "AWS::DynamoDB::Table", "JobsQueueUrl": "AWS::SQS::Queue", "JobsDLQUrl": "AWS::SQS::Queue"}
	for _, name := range sortedKeys(refs) {
		out, ok := outputs[name].(map[string]any)
		if !ok {
			problems = append(problems, fmt.Sprintf("output %s is missing", name))
			continue
		}
		r := RefsIn(out["Value"])
		if len(r) != 1 || r[0].Func != FnRef || tpl.Type(r[0].Target) != refs[name] {
			problems = append(problems, fmt.Sprintf("output %s is %s, want !Ref to an %s", name, compact(out["Value"]), refs[name]))
		}
	}
	return problems
}

// pathServed reports whether a route path (with {param} segments) serves a URL path, in which WeChat's
// placeholders such as $APPID$ stand for a parameter.
func pathServed(route, path string) bool {
	rs, ps := strings.Split(route, "/"), strings.Split(path, "/")
	if len(rs) != len(ps) {
		return false
	}
	for i := range rs {
		param := strings.HasPrefix(rs[i], "{") && strings.HasSuffix(rs[i], "}")
		placeholder := len(ps[i]) > 2 && strings.HasPrefix(ps[i], "$") && strings.HasSuffix(ps[i], "$")
		if rs[i] != ps[i] && !(param && (placeholder || ps[i] != "")) {
			return false
		}
	}
	return true
}

// checkJobsScaling: each SQS consumer keeps its batches invisible for 6x its timeout (Lambda's guidance: a
// batch still being worked on never reappears for another instance), and a consumer whose event source caps
// its concurrency (ScalingConfig.MaximumConcurrency) reserves at least that much, or Lambda throttles
// batches back to the queue, spending receives that end in the dead-letter queue.
func checkJobsScaling(tpl *Template) []string {
	var problems []string
	consumesJobs := false
	for _, fn := range functions(tpl) {
		events, _ := tpl.Properties(fn)["Events"].(map[string]any)
		for _, name := range sortedKeys(events) {
			ev, _ := events[name].(map[string]any)
			props, _ := ev["Properties"].(map[string]any)
			if ev["Type"] != "SQS" {
				continue
			}
			timeout, ok := number(tpl.FunctionProperty(fn, "Timeout"))
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: no Timeout (own or Globals.Function)", fn))
			}
			for _, r := range RefsIn(props["Queue"]) {
				if tpl.Type(r.Target) != "AWS::SQS::Queue" {
					continue
				}
				consumesJobs = consumesJobs || (fn == "JobsFunction" && r.Target == "JobsQueue")
				if vt, _ := number(tpl.Properties(r.Target)["VisibilityTimeout"]); ok && vt < 6*timeout {
					problems = append(problems, fmt.Sprintf("queue %s: VisibilityTimeout %v s is below 6x the timeout of its consumer %s (%v s)",
						r.Target, compact(tpl.Properties(r.Target)["VisibilityTimeout"]), fn, timeout))
				}
			}
			scaling, _ := props["ScalingConfig"].(map[string]any)
			maxConc, capped := number(scaling["MaximumConcurrency"])
			if !capped {
				continue
			}
			reserved, ok := number(tpl.FunctionProperty(fn, "ReservedConcurrentExecutions"))
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s: event %s caps concurrency at %v but the function reserves none (ReservedConcurrentExecutions)", fn, name, maxConc))
			case reserved < maxConc:
				problems = append(problems, fmt.Sprintf("%s: ReservedConcurrentExecutions %v is below event %s's MaximumConcurrency %v", fn, reserved, name, maxConc))
			}
		}
	}
	if !consumesJobs {
		problems = append(problems, "JobsFunction has no SQS event on JobsQueue")
	}
	if _, ok := number(tpl.FunctionProperty("JobsFunction", "ReservedConcurrentExecutions")); !ok {
		problems = append(problems, "JobsFunction has no ReservedConcurrentExecutions")
	}
	return problems
}

// maxSchedulePeriod: the refresh function also sweeps the release campaigns, which must not wait longer.
const maxSchedulePeriod = 5 * time.Minute

var rateExpr = regexp.MustCompile(`^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$`)

// ratePeriod reads an EventBridge rate expression.
func ratePeriod(expr string) (time.Duration, bool) {
	m := rateExpr.FindStringSubmatch(expr)
	if m == nil {
		return 0, false
	}
	var n int
	fmt.Sscan(m[1], &n)
	unit := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[strings.TrimSuffix(m[2], "s")]
	return time.Duration(n) * unit, n > 0
}

// checkRefreshSchedule: RefreshFunction runs on a schedule at most maxSchedulePeriod apart, by default and for
// every value its parameter accepts (a cron expression cannot be bounded this way, so none is accepted).
func checkRefreshSchedule(tpl *Template) []string {
	var problems []string
	events, _ := tpl.Properties("RefreshFunction")["Events"].(map[string]any)
	found := false
	for _, name := range sortedKeys(events) {
		ev, _ := events[name].(map[string]any)
		if ev["Type"] != "Schedule" {
			continue
		}
		found = true
		props, _ := ev["Properties"].(map[string]any)
		expr, isLiteral := props["Schedule"].(string)
		var pattern string
		if !isLiteral {
			refs := RefsIn(props["Schedule"])
			param, _ := tpl.Section("Parameters")[refTarget(refs)].(map[string]any)
			if param == nil {
				problems = append(problems, fmt.Sprintf("RefreshFunction event %s: Schedule %s is neither a string nor !Ref to a parameter", name, compact(props["Schedule"])))
				continue
			}
			expr = fmt.Sprint(param["Default"])
			pattern, _ = param["AllowedPattern"].(string)
			if pattern == "" {
				problems = append(problems, fmt.Sprintf("RefreshFunction event %s: parameter %s has no AllowedPattern, so any schedule can be deployed", name, refTarget(refs)))
			}
		}
		if d, ok := ratePeriod(expr); !ok || d > maxSchedulePeriod {
			problems = append(problems, fmt.Sprintf("RefreshFunction event %s: schedule %q does not run at least every %s", name, expr, maxSchedulePeriod))
		}
		if pattern == "" {
			continue
		}
		re, err := regexp.Compile("^(?:" + pattern + ")$")
		if err != nil {
			continue // checkParameters reports it
		}
		candidates := []string{"cron(0/5 * * * ? *)", "cron(0 * * * ? *)"}
		for n := 1; n <= 120; n++ {
			for _, unit := range []string{"minute", "hour", "day"} {
				plural := unit + "s"
				if n == 1 {
					plural = unit
				}
				candidates = append(candidates, fmt.Sprintf("rate(%d %s)", n, plural))
			}
		}
		for _, c := range candidates {
			if !re.MatchString(c) {
				continue
			}
			if d, ok := ratePeriod(c); !ok || d > maxSchedulePeriod {
				problems = append(problems, fmt.Sprintf("RefreshFunction event %s: the schedule parameter accepts %q, which does not run at least every %s", name, c, maxSchedulePeriod))
			}
		}
	}
	if !found {
		problems = append(problems, "RefreshFunction has no Schedule event")
	}
	return problems
}

func refTarget(refs []Reference) string {
	if len(refs) == 1 && refs[0].Func == FnRef {
		return refs[0].Target
	}
	return ""
}

// expectedAlarms are the alarms on the platform's own metrics (shared/metrics). Failure counts are never
// emitted as zero, so their missing data is healthy (notBreaching); the heartbeats (a ticket every 10 minutes,
// the component token's age at every refresh run) alarm when their data stops (breaching).
var expectedAlarms = []struct {
	metric     string
	statistic  string // Statistic, or ExtendedStatistic (p99)
	comparison string
	threshold  float64
	period     float64 // seconds
	evals      float64
	missing    string // TreatMissingData
}{
	{metrics.CampaignAppsFailed, "Sum", "GreaterThanThreshold", 0, 300, 1, "notBreaching"},
	{metrics.CampaignStepFailures, "Sum", "GreaterThanOrEqualToThreshold", 20, 300, 1, "notBreaching"},
	{metrics.RefreshFailures, "Sum", "GreaterThanThreshold", 0, 300, 1, "notBreaching"},
	{metrics.TicketsReceived, "Sum", "LessThanThreshold", 1, 1800, 1, "breaching"},
	{metrics.ComponentTokenAge, "Maximum", "GreaterThanThreshold", 7200, 300, 2, "breaching"},
	{metrics.AuthorizersNeedReauth, "Sum", "GreaterThanOrEqualToThreshold", 1, 300, 1, "notBreaching"},
	{metrics.MessageCallbackServerErrors, "Sum", "GreaterThanOrEqualToThreshold", 1, 300, 1, "notBreaching"},
	{metrics.MessageCallbackLatency, "p99", "GreaterThanThreshold", 4000, 300, 1, "notBreaching"},
}

// dashboardMetrics are the shared/metrics names the dashboard must graph.
var dashboardMetrics = []string{
	metrics.RefreshRuns, metrics.TokensRefreshed, metrics.RefreshFailures,
	metrics.MessagesReceived, metrics.MessagesRelayed, metrics.RelayFailures,
	metrics.CampaignAppsSubmitted, metrics.CampaignAppsReleased, metrics.CampaignAppsFailed, metrics.CampaignStepFailures,
	metrics.JobsDeadLettered,
	metrics.TicketsReceived, metrics.ComponentTokenAge, metrics.AuthorizersNeedReauth,
	metrics.MessageCallbackLatency, metrics.MessageCallbackServerErrors,
	metrics.GatewayRequests, metrics.GatewayTokenRetries,
}

// checkMonitoring: a dashboard whose body is valid JSON graphing every platform count, every queue's depth
// and every function's errors; the alarms on the counts; and the DashboardUrl output.
func checkMonitoring(tpl *Template) []string {
	var problems []string
	dashboards := tpl.LogicalIDs("AWS::CloudWatch::Dashboard")
	if len(dashboards) == 0 {
		problems = append(problems, "template.yaml declares no AWS::CloudWatch::Dashboard")
	}
	for _, id := range dashboards {
		problems = append(problems, checkDashboard(tpl, id, dashboardMetrics)...)
	}

	for _, want := range expectedAlarms {
		found := false
		for _, id := range tpl.LogicalIDs("AWS::CloudWatch::Alarm") {
			props := tpl.Properties(id)
			if props["Namespace"] != metrics.Namespace || props["MetricName"] != want.metric {
				continue
			}
			found = true
			period, _ := number(props["Period"])
			evals, _ := number(props["EvaluationPeriods"])
			threshold, ok := number(props["Threshold"])
			fail := func(format string, args ...any) {
				problems = append(problems, fmt.Sprintf("alarm %s (%s): ", id, want.metric)+fmt.Sprintf(format, args...))
			}
			if props["ComparisonOperator"] != want.comparison || !ok || threshold != want.threshold {
				fail("fires on %v %v, want %s %v", props["ComparisonOperator"], compact(props["Threshold"]), want.comparison, want.threshold)
			}
			statistic := props["Statistic"]
			if statistic == nil {
				statistic = props["ExtendedStatistic"]
			}
			if statistic != want.statistic || period != want.period || evals != want.evals {
				fail("%v over %v x %v s, want %s over %v x %v s", statistic, compact(props["EvaluationPeriods"]), compact(props["Period"]), want.statistic, want.evals, want.period)
			}
			if props["TreatMissingData"] != want.missing {
				fail("TreatMissingData is %v, want %s", compact(props["TreatMissingData"]), want.missing)
			}
			if len(asList(props["AlarmActions"])) == 0 {
				fail("has no AlarmActions")
			}
			if len(asList(props["OKActions"])) == 0 {
				fail("has no OKActions (no mail when it clears)")
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("no AWS::CloudWatch::Alarm on %s %s", metrics.Namespace, want.metric))
		}
	}

	out, _ := tpl.Section("Outputs")["DashboardUrl"].(map[string]any)
	if !slices.ContainsFunc(RefsIn(out["Value"]), func(r Reference) bool { return slices.Contains(dashboards, r.Target) }) {
		problems = append(problems, "output DashboardUrl is missing or does not name the dashboard")
	}
	return problems
}

// checkDashboard reads a DashboardBody (a !Sub string) as CloudWatch will: ${...} become values, the rest must
// be JSON. Variables are kept as "{{Name}}" so dimension values can be traced to resources.
func checkDashboard(tpl *Template, id string, want []string) []string {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, id+": "+fmt.Sprintf(format, args...)) }
	body := subText(tpl.Properties(id)["DashboardBody"])
	if body == "" {
		return []string{id + ": DashboardBody is not a string or !Sub string"}
	}
	body = subVar.ReplaceAllString(body, "{{$1}}")
	var doc struct {
		Widgets []struct {
			Type       string `json:"type"`
			Properties struct {
				Region  string  `json:"region"`
				Metrics [][]any `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return []string{fmt.Sprintf("%s: DashboardBody is not valid JSON: %v", id, err)}
	}
	graphed := map[string]bool{} // "namespace metric [dimension value]"
	for i, w := range doc.Widgets {
		if w.Type != "metric" {
			continue
		}
		if w.Properties.Region == "" {
			fail("widget %d has no region (CloudWatch refuses metric widgets without one)", i)
		}
		var prev []string
		for _, row := range w.Properties.Metrics {
			var fields []string
			for j, v := range row {
				s, ok := v.(string)
				if !ok {
					break // the rendering options object ends the row
				}
				if s == "." && j < len(prev) {
					s = prev[j] // CloudWatch's "same as the row above"
				}
				fields = append(fields, s)
			}
			prev = fields
			graphed[strings.Join(fields, " ")] = true
		}
	}
	for _, name := range want {
		if !graphed[metrics.Namespace+" "+name] {
			fail("does not graph %s %s", metrics.Namespace, name)
		}
	}
	for _, q := range tpl.LogicalIDs("AWS::SQS::Queue") {
		if !graphed["AWS/SQS ApproximateNumberOfMessagesVisible QueueName {{"+q+".QueueName}}"] {
			fail("does not graph the depth of queue %s (ApproximateNumberOfMessagesVisible, QueueName ${%s.QueueName})", q, q)
		}
	}
	for _, fn := range functions(tpl) {
		if !graphed["AWS/Lambda Errors FunctionName {{"+fn+"}}"] {
			fail("does not graph the errors of %s (AWS/Lambda Errors, FunctionName ${%s})", fn, fn)
		}
	}
	return problems
}

// expectedGrants are the permissions the code needs beyond what every function has: function -> action ->
// resources, each written as X for !GetAtt X.Arn, or X/rest for !Sub "${X.Arn}/rest".
var expectedGrants = map[string]map[string][]string{
	// The refresh run also sweeps release campaigns: it queries the table and its indexes and queues steps.
	"RefreshFunction": {
		"dynamodb:Query":       {"Table", "Table/index/*"},
		"sqs:SendMessage":      {"JobsQueue"},
		"sqs:SendMessageBatch": {"JobsQueue"},
	},
	"JobsFunction": {
		"dynamodb:GetItem": {"Table"}, "dynamodb:PutItem": {"Table"}, "dynamodb:UpdateItem": {"Table"},
		"dynamodb:DeleteItem": {"Table"}, "dynamodb:Query": {"Table"}, "dynamodb:BatchGetItem": {"Table"},
		"dynamodb:Scan":        {"Table"},
		"sqs:SendMessage":      {"JobsQueue", "JobsDLQ"},
		"sqs:SendMessageBatch": {"JobsQueue", "JobsDLQ"},
		// The SQS event source polls with the function's role; SAM grants this only to roles it makes.
		"sqs:ReceiveMessage": {"JobsQueue"}, "sqs:DeleteMessage": {"JobsQueue"}, "sqs:GetQueueAttributes": {"JobsQueue"},
	},
	// The token store's reads and leases; listing the authorizers queries and scans.
	"GatewayFunction": {
		"dynamodb:GetItem": {"Table"}, "dynamodb:PutItem": {"Table"}, "dynamodb:UpdateItem": {"Table"},
		"dynamodb:Query": {"Table"}, "dynamodb:Scan": {"Table"},
		"sqs:SendMessage": {"JobsQueue"}, // lifecycle notifications (needs_reauth)
	},
	"AuthRedirectFunction": {
		"dynamodb:DeleteItem": {"Table"},     // a fan's sign-in request is taken once
		"sqs:SendMessage":     {"JobsQueue"}, // lifecycle notifications (needs_reauth)
	},
}

// resourceKey names what a raw Resource entry points at, in expectedGrants' terms.
func resourceKey(res any) string {
	refs := RefsIn(res)
	if len(refs) != 1 || refs[0].Attr != "Arn" {
		return ""
	}
	if text := subText(res); text != "" {
		rest, ok := strings.CutPrefix(text, "${"+refs[0].Target+".Arn}")
		if !ok {
			return ""
		}
		return refs[0].Target + rest
	}
	return refs[0].Target
}

func checkGrants(tpl *Template, expected map[string]map[string][]string) []string {
	runsAs := map[string]string{} // role -> the function that runs as it
	for _, fn := range functions(tpl) {
		if role := tpl.FunctionRole(fn); role != "" {
			runsAs[role] = fn
		}
	}
	granted := map[string]bool{} // "function action resource"
	for _, st := range tpl.PolicyStatements() {
		if st.Effect != "Allow" {
			continue
		}
		owner := st.Owner
		if fn, ok := runsAs[owner]; ok {
			owner = fn
		}
		for _, a := range st.Actions {
			for _, res := range st.Resources {
				granted[owner+" "+a+" "+resourceKey(res)] = true
			}
		}
	}
	var problems []string
	for _, fn := range sortedKeys(expected) {
		for _, action := range sortedKeys(expected[fn]) {
			for _, res := range expected[fn][action] {
				if !granted[fn+" "+action+" "+res] {
					problems = append(problems, fmt.Sprintf("%s is not granted %s on %s", fn, action, res))
				}
			}
		}
	}
	return problems
}

// TestReturnUrlAllowlistPattern: CloudFormation refuses, at deploy time, an allow-list the pages would refuse
// at cold start (or, worse, one pointing merchants at plain http).
func TestReturnUrlAllowlistPattern(t *testing.T) {
	p := loadProject(t, repoRoot)
	param, _ := p.tpl.Section("Parameters")["ReturnUrlAllowlist"].(map[string]any)
	pattern, ok := param["AllowedPattern"].(string)
	if !ok {
		t.Fatal("parameter ReturnUrlAllowlist has no AllowedPattern")
	}
	re := regexp.MustCompile("^(?:" + pattern + ")$") // CloudFormation matches the whole value
	for _, good := range []string{
		"", "https://shop.example.com", "https://shop.example.com/after-auth/",
		"https://a.example.com/x,https://b.example.com:8443", "https://a.example.com , https://b.example.com/y/z",
	} {
		if !re.MatchString(good) {
			t.Errorf("%q is refused", good)
		}
	}
	for _, bad := range []string{
		"http://shop.example.com", "shop.example.com", "https://shop.example.com?x=1", "https://shop.example.com/#top",
		"https://user@shop.example.com", "https://a.example.com,", ",https://a.example.com", "javascript:alert(1)",
		"https://a.example.com/x y", `https://a.example.com\evil`,
	} {
		if re.MatchString(bad) {
			t.Errorf("%q is accepted", bad)
		}
	}
}

// TestDevstackMatchesTemplate: `make dev` runs each function with the routes and timeout template.yaml gives it
// (the refresh function paces itself by its deadline; the callback waits up to 8 s for the push).
func TestDevstackMatchesTemplate(t *testing.T) {
	p := loadProject(t, repoRoot)
	byDir := map[string]string{}
	for _, fn := range functions(p.tpl) {
		if dir, problem := buildDir(p, fn); problem == "" {
			byDir[dir] = fn
		}
	}
	routes := map[string][]string{}
	for _, r := range p.tpl.Routes() {
		routes[r.Function] = append(routes[r.Function], r.Key())
	}
	if len(devstack.Functions) != len(byDir) {
		t.Errorf("devstack runs %d functions, template.yaml declares %d", len(devstack.Functions), len(byDir))
	}
	for _, f := range devstack.Functions {
		fn, ok := byDir[f.Name]
		if !ok {
			t.Errorf("devstack runs %s, which no function of template.yaml is built from", f.Name)
			continue
		}
		if timeout, _ := number(p.tpl.FunctionProperty(fn, "Timeout")); time.Duration(timeout)*time.Second != f.Timeout {
			t.Errorf("%s: devstack timeout %s, template.yaml %v s", f.Name, f.Timeout, timeout)
		}
		var keys []string
		for _, r := range f.Routes {
			keys = append(keys, r.Method+" "+r.Path)
		}
		slices.Sort(keys)
		want := slices.Sorted(slices.Values(routes[fn]))
		if !slices.Equal(keys, want) {
			t.Errorf("%s: devstack routes %q, template.yaml %q", f.Name, keys, want)
		}
	}
}

// TestTimeoutsLeaveRoomForTheAuthorizationExchange: an exchange takes its budget from the time left on the
// invocation (shared/authorization), so a function whose timeout is shorter than its longest wait plus one
// exchange (api_query_auth and the writes after it) could hold WeChat's answer for a single-use code only in
// memory when Lambda ends it. The arithmetic comes from template.yaml and the code's own constants.
func TestTimeoutsLeaveRoomForTheAuthorizationExchange(t *testing.T) {
	p := loadProject(t, repoRoot)
	for fn, wait := range map[string]time.Duration{
		"TicketFunction":       authorization.PushWait, // the push waits for another delivery's exchange
		"AuthRedirectFunction": authpages.CallbackWait, // the redirect waits for the exchange and the push
	} {
		seconds, ok := number(p.tpl.FunctionProperty(fn, "Timeout"))
		if !ok {
			t.Errorf("%s: no timeout in template.yaml", fn)
			continue
		}
		timeout := time.Duration(seconds) * time.Second
		if need := wait + authorization.MinExchange + authorization.WriteReserve; timeout < need {
			t.Errorf("%s: timeout %s, but its wait (%s) + one exchange (%s) + the durable write (%s) need %s",
				fn, timeout, wait, authorization.MinExchange, authorization.WriteReserve, need)
		}
	}
	// WeChat waits 5 s for the push's answer: a push that waits longer is always sent again.
	if authorization.PushWait >= 5*time.Second {
		t.Errorf("PushWait %s: WeChat gives up on the push after 5 s", authorization.PushWait)
	}
}

// TestJobsQueueMatchesTheConsumer: the jobs consumer moves a failing job to the dead-letter queue itself, with
// its reason, on the receive SQS would redrive it (jobs.MaxReceives), and the jobs function reports batch
// item failures (or a bad job would repeat its whole batch).
func TestJobsQueueMatchesTheConsumer(t *testing.T) {
	p := loadProject(t, repoRoot)
	redrive, _ := p.tpl.Properties("JobsQueue")["RedrivePolicy"].(map[string]any)
	if n, ok := number(redrive["maxReceiveCount"]); !ok || int(n) != jobs.MaxReceives {
		t.Errorf("JobsQueue maxReceiveCount %v, the consumer assumes %d (shared/jobs.MaxReceives)", redrive["maxReceiveCount"], jobs.MaxReceives)
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// goformation drops FunctionResponseTypes of SQS events (toolchain notes): read the YAML itself.
	i := strings.Index(string(raw), "  JobsFunction:")
	j := strings.Index(string(raw), "  JobsLogGroup:")
	if i < 0 || j < i || !strings.Contains(string(raw[i:j]), "FunctionResponseTypes: [ReportBatchItemFailures]") {
		t.Error("JobsFunction's SQS event does not report batch item failures")
	}
}
