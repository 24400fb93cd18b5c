// Package samtemplate reads the project's AWS SAM template and the SAM build makefile fragment
// (infra/sam.mk) so that tests can check them without an AWS account: which names every !Ref,
// !GetAtt and !Sub points at, which HTTP routes exist and which function serves each, which IAM
// statements are granted, and which folder each build target compiles.
//
// A template is read twice. goformation gives a typed view (Template.CFN) in which intrinsic functions
// are resolved as far as they can be without a stack: Ref to a parameter yields its default, anything
// pointing at a resource yields nil. The raw view (Template.Raw) keeps intrinsics in their long form
// ({"Ref": "X"}, {"Fn::GetAtt": ...}) and the Globals section intact, because goformation does not
// merge Globals into resources and drops properties it has no schema for.
package samtemplate

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// Long-form names of the intrinsic functions this package records.
const (
	FnRef    = "Ref"
	FnGetAtt = "Fn::GetAtt"
	FnSub    = "Fn::Sub"
)

// PseudoParameters are the names Ref and ${} accept without a declaration in the template.
var PseudoParameters = map[string]bool{
	"AWS::AccountId":        true,
	"AWS::NotificationARNs": true,
	"AWS::NoValue":          true,
	"AWS::Partition":        true,
	"AWS::Region":           true,
	"AWS::StackId":          true,
	"AWS::StackName":        true,
	"AWS::URLSuffix":        true,
}

// Reference is one name an intrinsic function points at.
type Reference struct {
	Func   string // FnRef, FnGetAtt or FnSub (a ${...} variable inside the string)
	Target string // logical id, parameter or pseudo parameter
	Attr   string // attribute for Fn::GetAtt and ${Target.Attr}; empty otherwise
	// Malformed describes an argument of the wrong shape (e.g. a Ref to a list); Target is then empty.
	Malformed string
}

// String renders the reference the way it is written in YAML, for error messages.
func (r Reference) String() string {
	switch {
	case r.Malformed != "":
		return fmt.Sprintf("%s (malformed: %s)", r.Func, r.Malformed)
	case r.Func == FnGetAtt:
		return fmt.Sprintf("!GetAtt %s.%s", r.Target, r.Attr)
	case r.Func == FnSub && r.Attr != "":
		return fmt.Sprintf("!Sub ${%s.%s}", r.Target, r.Attr)
	case r.Func == FnSub:
		return fmt.Sprintf("!Sub ${%s}", r.Target)
	default:
		return fmt.Sprintf("!Ref %s", r.Target)
	}
}

// IsAttribute reports whether the reference names an attribute of a resource (GetAtt or ${X.Attr}),
// which only a resource, never a parameter, can satisfy.
func (r Reference) IsAttribute() bool { return r.Func == FnGetAtt || r.Attr != "" }

// Template is a parsed SAM template.
type Template struct {
	CFN  *cloudformation.Template // typed view; see the package comment for what intrinsics become
	Raw  map[string]any           // untyped view with intrinsics in long form and Globals intact
	Refs []Reference              // every Ref, GetAtt and ${} seen by goformation's intrinsic processor
}

// goformation registers its YAML tag resolvers in a package-level map on every parse, so parses must
// not run concurrently.
var parseMu sync.Mutex

// Open reads and parses the template at path.
func Open(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse parses a YAML (or JSON) SAM template.
func Parse(data []byte) (t *Template, err error) {
	parseMu.Lock()
	defer parseMu.Unlock()
	// goformation's default intrinsic handlers index their arguments without checking them; a malformed
	// template must come back as an error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("parse template: malformed intrinsic function: %v", r)
		}
	}()

	rawJSON, err := intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	var raw map[string]any
	if err := json.Unmarshal(rawJSON, &raw); err != nil || raw == nil {
		return nil, fmt.Errorf("parse template: the document is not a mapping")
	}

	// goformation answers an unknown type with a bare "json: Unmarshal(nil)"; name the culprit instead.
	if err := checkTypes(raw); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}

	var refs []Reference
	opts := &intrinsics.ProcessorOptions{IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{
		FnRef: func(name string, input, tpl any) any {
			refs = append(refs, refOf(input))
			return intrinsics.Ref(name, input, tpl) // parameter defaults keep typed fields meaningful
		},
		FnGetAtt: func(name string, input, tpl any) any {
			refs = append(refs, getAttOf(input))
			return nil
		},
		FnSub: func(name string, input, tpl any) any {
			subRefs, ok := subOf(input)
			refs = append(refs, subRefs...)
			if !ok {
				return nil
			}
			return intrinsics.FnSub(name, input, tpl)
		},
	}}
	cfn, err := goformation.ParseYAMLWithOptions(data, opts)
	if err != nil {
		return nil, fmt.Errorf("parse template with goformation: %w", err)
	}
	return &Template{CFN: cfn, Raw: raw, Refs: refs}, nil
}

func checkTypes(raw map[string]any) error {
	known := cloudformation.AllResources()
	resources, _ := raw["Resources"].(map[string]any)
	for _, id := range sortedKeys(resources) {
		decl, ok := resources[id].(map[string]any)
		if !ok {
			return fmt.Errorf("resource %s is not a mapping", id)
		}
		typ, _ := decl["Type"].(string)
		if _, ok := known[typ]; !ok && !strings.HasPrefix(typ, "Custom::") {
			return fmt.Errorf("resource %s has type %q, which goformation does not know", id, typ)
		}
	}
	globals, _ := raw["Globals"].(map[string]any)
	for _, section := range sortedKeys(globals) {
		if _, ok := known[section]; !ok || strings.Contains(section, "::") {
			return fmt.Errorf("Globals.%s is not a SAM Globals section", section)
		}
	}
	return nil
}

func refOf(input any) Reference {
	name, ok := input.(string)
	if !ok || name == "" {
		return Reference{Func: FnRef, Malformed: fmt.Sprintf("argument %s is not a name", compact(input))}
	}
	return Reference{Func: FnRef, Target: name}
}

func getAttOf(input any) Reference {
	switch v := input.(type) {
	case string: // short form !GetAtt Res.Attr
		if res, attr, ok := strings.Cut(v, "."); ok && res != "" && attr != "" {
			return Reference{Func: FnGetAtt, Target: res, Attr: attr}
		}
	case []any:
		if len(v) == 2 {
			res, ok1 := v[0].(string)
			attr, ok2 := v[1].(string)
			if ok1 && ok2 && res != "" && attr != "" {
				return Reference{Func: FnGetAtt, Target: res, Attr: attr}
			}
		}
	}
	return Reference{Func: FnGetAtt, Malformed: fmt.Sprintf("argument %s is not Resource.Attribute", compact(input))}
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// subOf returns the references made by the ${...} variables of a Fn::Sub argument, and whether the
// argument has a valid shape: a string, or [string, {name: value}] whose names are local variables.
func subOf(input any) ([]Reference, bool) {
	var (
		text   string
		locals map[string]any
	)
	switch v := input.(type) {
	case string:
		text = v
	case []any:
		var ok1, ok2 bool
		if len(v) == 2 {
			text, ok1 = v[0].(string)
			locals, ok2 = v[1].(map[string]any)
		}
		if !ok1 || !ok2 {
			return []Reference{{Func: FnSub, Malformed: fmt.Sprintf("argument %s is not [string, map]", compact(input))}}, false
		}
	default:
		return []Reference{{Func: FnSub, Malformed: fmt.Sprintf("argument %s is not a string", compact(input))}}, false
	}
	return subVars(text, locals), true
}

// subVars lists the template names used by ${...} in a Fn::Sub string; ${!Literal} and local
// variables are not references.
func subVars(text string, locals map[string]any) []Reference {
	var refs []Reference
	for _, m := range subVar.FindAllStringSubmatch(text, -1) {
		name := m[1]
		if strings.HasPrefix(name, "!") {
			continue
		}
		if _, ok := locals[name]; ok {
			continue
		}
		if name == "" {
			refs = append(refs, Reference{Func: FnSub, Malformed: "empty ${} in " + fmt.Sprintf("%q", text)})
			continue
		}
		target, attr, _ := strings.Cut(name, ".")
		refs = append(refs, Reference{Func: FnSub, Target: target, Attr: attr})
	}
	return refs
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// RefsIn walks a raw (long-form) value and returns the references it contains, in a stable order.
// It sees the same intrinsics as Template.Refs but tells you where they are, which per-resource
// questions (dependencies, route targets) need.
func RefsIn(v any) []Reference {
	var out []Reference
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 1 {
				if arg, ok := x[FnRef]; ok {
					out = append(out, refOf(arg))
					return
				}
				if arg, ok := x[FnGetAtt]; ok {
					out = append(out, getAttOf(arg))
					return
				}
				if arg, ok := x[FnSub]; ok {
					refs, _ := subOf(arg)
					out = append(out, refs...)
					if list, ok := arg.([]any); ok && len(list) == 2 {
						walk(list[1]) // values of local variables may hold intrinsics
					}
					return
				}
			}
			for _, k := range sortedKeys(x) {
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Section returns a top-level section of the raw template (Resources, Parameters, Globals, ...),
// or nil when it is absent or not a mapping.
func (t *Template) Section(name string) map[string]any {
	m, _ := t.Raw[name].(map[string]any)
	return m
}

// Resource returns the raw declaration of a resource (with Type, Properties, Metadata, ...), or nil.
func (t *Template) Resource(id string) map[string]any {
	m, _ := t.Section("Resources")[id].(map[string]any)
	return m
}

// Type returns a resource's Type, or "" when it is not declared.
func (t *Template) Type(id string) string {
	s, _ := t.Resource(id)["Type"].(string)
	return s
}

// Properties returns a resource's raw Properties (nil when it has none).
func (t *Template) Properties(id string) map[string]any {
	m, _ := t.Resource(id)["Properties"].(map[string]any)
	return m
}

// LogicalIDs returns the sorted logical ids of the resources of the given type.
func (t *Template) LogicalIDs(typ string) []string {
	var ids []string
	for _, id := range sortedKeys(t.Section("Resources")) {
		if t.Type(id) == typ {
			ids = append(ids, id)
		}
	}
	return ids
}

// Declared reports whether Ref (or ${name}) can resolve name: a resource, a parameter or a pseudo
// parameter.
func (t *Template) Declared(name string) bool {
	if PseudoParameters[name] {
		return true
	}
	if _, ok := t.Section("Parameters")[name]; ok {
		return true
	}
	return t.Resource(name) != nil
}

// GlobalFunctionProperty returns Globals.Function.<name> from the raw template, or nil.
func (t *Template) GlobalFunctionProperty(name string) any {
	fn, _ := t.Section("Globals")["Function"].(map[string]any)
	return fn[name]
}

// FunctionProperty returns a property of an AWS::Serverless::Function as SAM will deploy it: the
// function's own value, else the Globals.Function value. (goformation does not merge Globals.)
func (t *Template) FunctionProperty(id, name string) any {
	if v, ok := t.Properties(id)[name]; ok {
		return v
	}
	return t.GlobalFunctionProperty(name)
}

// FunctionRole returns the logical id of the AWS::IAM::Role a function runs as when it names one
// (Role: !GetAtt <Role>.Arn), or "" when SAM makes the role (from Policies) or the role is not in the template.
func (t *Template) FunctionRole(fn string) string {
	refs := RefsIn(t.Properties(fn)["Role"])
	if len(refs) == 1 && refs[0].Func == FnGetAtt && refs[0].Attr == "Arn" && t.Type(refs[0].Target) == "AWS::IAM::Role" {
		return refs[0].Target
	}
	return ""
}

// Route is one HTTP route and the function behind it.
type Route struct {
	Method   string // e.g. "POST"; empty for the $default route
	Path     string // e.g. "/wechat/component/events"
	Source   string // the AWS::ApiGatewayV2::Route logical id, or "<Function>.Events.<Name>"
	Function string // logical id of the function that serves the route; "" if it cannot be traced
}

// Key renders the route the way API Gateway writes a route key ("POST /path" or "$default").
func (r Route) Key() string {
	if r.Method == "" && r.Path == "" {
		return "$default"
	}
	return r.Method + " " + r.Path
}

// Routes returns every HTTP route the template declares: AWS::ApiGatewayV2::Route resources (traced
// through their integration to a function) and Api/HttpApi events of serverless functions.
func (t *Template) Routes() []Route {
	var routes []Route
	for _, id := range t.LogicalIDs("AWS::ApiGatewayV2::Route") {
		props := t.Properties(id)
		key, _ := props["RouteKey"].(string)
		r := Route{Source: id}
		if key != "$default" {
			r.Method, r.Path, _ = strings.Cut(key, " ")
		}
		for _, ref := range RefsIn(props["Target"]) {
			if t.Type(ref.Target) == "AWS::ApiGatewayV2::Integration" {
				r.Function = t.integrationFunction(ref.Target)
				break
			}
		}
		routes = append(routes, r)
	}
	for _, fn := range t.LogicalIDs("AWS::Serverless::Function") {
		events, _ := t.Properties(fn)["Events"].(map[string]any)
		for _, name := range sortedKeys(events) {
			ev, _ := events[name].(map[string]any)
			if typ, _ := ev["Type"].(string); typ != "HttpApi" && typ != "Api" {
				continue
			}
			props, _ := ev["Properties"].(map[string]any)
			method, _ := props["Method"].(string)
			path, _ := props["Path"].(string)
			routes = append(routes, Route{
				Method: strings.ToUpper(method), Path: path,
				Source: fn + ".Events." + name, Function: fn,
			})
		}
	}
	return routes
}

func (t *Template) integrationFunction(integration string) string {
	for _, ref := range RefsIn(t.Properties(integration)["IntegrationUri"]) {
		switch t.Type(ref.Target) {
		case "AWS::Serverless::Function", "AWS::Lambda::Function":
			return ref.Target
		}
	}
	return ""
}

// Statement is one IAM policy statement found anywhere in a resource's properties (SAM Policies,
// AWS::IAM::Role/Policy documents, resource policies).
type Statement struct {
	Owner     string   // logical id of the resource that holds it
	Sid       string   // may be empty
	Effect    string   // Allow or Deny
	Actions   []string // Action entries; NotAction entries are prefixed with "!"
	Resources []any    // Resource entries as written: strings or long-form intrinsics
}

// PolicyStatements returns every IAM statement in the template, ordered by owner.
func (t *Template) PolicyStatements() []Statement {
	var out []Statement
	resources := t.Section("Resources")
	for _, id := range sortedKeys(resources) {
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				_, hasAction := x["Action"]
				_, hasNotAction := x["NotAction"]
				effect, hasEffect := x["Effect"].(string)
				if hasEffect && (hasAction || hasNotAction) {
					st := Statement{Owner: id, Effect: effect}
					st.Sid, _ = x["Sid"].(string)
					for _, a := range asList(x["Action"]) {
						st.Actions = append(st.Actions, fmt.Sprint(a))
					}
					for _, a := range asList(x["NotAction"]) {
						st.Actions = append(st.Actions, "!"+fmt.Sprint(a))
					}
					st.Resources = asList(x["Resource"])
					out = append(out, st)
					return
				}
				for _, k := range sortedKeys(x) {
					walk(x[k])
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		walk(resources[id])
	}
	return out
}

func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	default:
		return []any{x}
	}
}

// BuildTarget is one build-<LogicalId> target of a SAM makefile fragment.
type BuildTarget struct {
	LogicalID string   // the function it builds, from the target name
	Recipe    []string // recipe lines with $(VAR) expanded from the fragment's own assignments
	Dirs      []string // ./functions/<dir> packages named by the recipe
}

var (
	mkAssign   = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|:=|::=|\?=)\s*(.*)$`)
	mkTarget   = regexp.MustCompile(`^build-([A-Za-z0-9]+)\s*:([^=].*)?$`)
	mkVarRef   = regexp.MustCompile(`\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]`)
	mkFunction = regexp.MustCompile(`(?:^|\s)\./functions/([A-Za-z0-9_.-]+)/?(?:\s|$)`)
)

// ParseBuildTargets reads the build-<LogicalId> targets of a makefile fragment such as infra/sam.mk.
// It understands what the fragment uses (simple variable assignments, tab-indented recipes, line
// continuations), not all of make; a target defined twice is an error.
func ParseBuildTargets(makefile []byte) ([]BuildTarget, error) {
	lines := strings.Split(strings.ReplaceAll(string(makefile), "\\\n", " "), "\n")
	vars := map[string]string{}
	var targets []BuildTarget
	seen := map[string]bool{}
	current := -1
	for n, line := range lines {
		if strings.HasPrefix(line, "\t") {
			if current >= 0 {
				targets[current].Recipe = append(targets[current].Recipe, strings.TrimSpace(line[1:]))
			}
			continue
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		current = -1
		if m := mkTarget.FindStringSubmatch(line); m != nil {
			if seen[m[1]] {
				return nil, fmt.Errorf("line %d: target build-%s defined twice", n+1, m[1])
			}
			seen[m[1]] = true
			targets = append(targets, BuildTarget{LogicalID: m[1]})
			current = len(targets) - 1
			continue
		}
		if m := mkAssign.FindStringSubmatch(line); m != nil {
			vars[m[1]] = strings.TrimSpace(m[2])
		}
	}
	for i := range targets {
		for j, line := range targets[i].Recipe {
			line = expandVars(line, vars)
			targets[i].Recipe[j] = line
			for _, m := range mkFunction.FindAllStringSubmatch(line, -1) {
				targets[i].Dirs = append(targets[i].Dirs, m[1])
			}
		}
	}
	return targets, nil
}

// expandVars substitutes $(NAME) for variables assigned in the fragment, a few levels deep; unknown
// names (ARTIFACTS_DIR, set by sam build) stay as written.
func expandVars(s string, vars map[string]string) string {
	for range 5 {
		next := mkVarRef.ReplaceAllStringFunc(s, func(m string) string {
			if v, ok := vars[mkVarRef.FindStringSubmatch(m)[1]]; ok {
				return v
			}
			return m
		})
		if next == s {
			break
		}
		s = next
	}
	return s
}
