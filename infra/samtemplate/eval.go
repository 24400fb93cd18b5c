package samtemplate

import (
	"fmt"
	"strconv"
	"strings"
)

// Deploy resolves a template for one set of parameter values, as CloudFormation would when the stack is
// deployed: which conditions hold, which resources and outputs exist, what a value comes to. Nothing of AWS
// is known, so what only a deployed stack knows stays symbolic: a resource's Ref is "<Id>", an attribute
// "<Id.Attr>", a pseudo parameter "<AWS::Region>" (unless given as a parameter value), Fn::GetAZs
// ["<AZ0>", "<AZ1>", "<AZ2>"].
type Deploy struct {
	tpl    *Template
	params map[string]string
}

// NoValue is what Eval returns for !Ref AWS::NoValue (and an Fn::If branch that resolves to it). Inside
// lists and mappings it is dropped, as CloudFormation drops it.
var NoValue = noValue{}

type noValue struct{}

// Deploy returns the template as deployed with the given parameter values (and pseudo parameters such as
// AWS::Partition); parameters not given take their Default.
func (t *Template) Deploy(params map[string]string) *Deploy {
	return &Deploy{tpl: t, params: params}
}

// Param is a parameter's value: the one given, else its Default.
func (d *Deploy) Param(name string) (string, error) {
	if v, ok := d.params[name]; ok {
		return v, nil
	}
	if PseudoParameters[name] {
		return "<" + name + ">", nil
	}
	decl, ok := d.tpl.Section("Parameters")[name].(map[string]any)
	if !ok {
		return "", fmt.Errorf("Ref %s: no such parameter", name)
	}
	def, ok := decl["Default"]
	if !ok {
		return "", fmt.Errorf("Ref %s: the parameter has no Default and no value was given", name)
	}
	if f, ok := def.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	}
	return fmt.Sprint(def), nil
}

// Condition evaluates a condition of the Conditions section.
func (d *Deploy) Condition(name string) (bool, error) {
	return d.conditionDepth(name, 0)
}

func (d *Deploy) conditionDepth(name string, depth int) (bool, error) {
	if depth > 20 {
		return false, fmt.Errorf("condition %s: conditions refer to each other in a loop", name)
	}
	expr, ok := d.tpl.Section("Conditions")[name]
	if !ok {
		return false, fmt.Errorf("condition %s is not declared", name)
	}
	b, err := d.boolean(expr, depth+1)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	return b, nil
}

// boolean evaluates a condition expression: Fn::Equals, Fn::Not, Fn::And, Fn::Or and {"Condition": name}.
func (d *Deploy) boolean(expr any, depth int) (bool, error) {
	m, ok := expr.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("%s is not a condition function", compact(expr))
	}
	for fn, arg := range m {
		if fn == "Condition" {
			name, ok := arg.(string)
			if !ok {
				return false, fmt.Errorf("Condition %s is not a name", compact(arg))
			}
			return d.conditionDepth(name, depth)
		}
		args, ok := arg.([]any)
		if !ok {
			return false, fmt.Errorf("%s: argument %s is not a list", fn, compact(arg))
		}
		switch fn {
		case "Fn::Equals":
			if len(args) != 2 {
				return false, fmt.Errorf("Fn::Equals takes 2 values, got %d", len(args))
			}
			a, err := d.Eval(args[0])
			if err != nil {
				return false, err
			}
			b, err := d.Eval(args[1])
			if err != nil {
				return false, err
			}
			// CloudFormation compares the values as strings (a Number parameter's "3" equals 3).
			return scalarText(a) == scalarText(b), nil
		case "Fn::Not":
			if len(args) != 1 {
				return false, fmt.Errorf("Fn::Not takes 1 condition, got %d", len(args))
			}
			b, err := d.boolean(args[0], depth)
			return !b, err
		case "Fn::And", "Fn::Or":
			if len(args) < 2 {
				return false, fmt.Errorf("%s takes at least 2 conditions, got %d", fn, len(args))
			}
			and := fn == "Fn::And"
			for _, a := range args {
				b, err := d.boolean(a, depth)
				if err != nil {
					return false, err
				}
				if b != and {
					return b, nil
				}
			}
			return and, nil
		}
		return false, fmt.Errorf("%s is not a condition function", fn)
	}
	panic("unreachable")
}

// Creates reports whether a resource or output ("Resources" or "Outputs") exists in this deploy: it is
// declared, and has no Condition or a true one.
func (d *Deploy) Creates(section, id string) (bool, error) {
	decl, ok := d.tpl.Section(section)[id].(map[string]any)
	if !ok {
		return false, nil
	}
	cond, ok := decl["Condition"]
	if !ok {
		return true, nil
	}
	name, ok := cond.(string)
	if !ok {
		return false, fmt.Errorf("%s.%s: Condition %s is not a name", section, id, compact(cond))
	}
	return d.Condition(name)
}

// FailedRules returns the AssertDescription (or rule name) of every assertion of the Rules section that
// this deploy's parameter values break; CloudFormation refuses such a deploy before it changes anything.
func (d *Deploy) FailedRules() ([]string, error) {
	var failed []string
	rules := d.tpl.Section("Rules")
	for _, name := range sortedKeys(rules) {
		rule, _ := rules[name].(map[string]any)
		if cond, ok := rule["RuleCondition"]; ok {
			applies, err := d.boolean(cond, 0)
			if err != nil {
				return nil, fmt.Errorf("rule %s: RuleCondition: %w", name, err)
			}
			if !applies {
				continue
			}
		}
		for i, a := range asList(rule["Assertions"]) {
			assertion, _ := a.(map[string]any)
			ok, err := d.boolean(assertion["Assert"], 0)
			if err != nil {
				return nil, fmt.Errorf("rule %s: assertion %d: %w", name, i, err)
			}
			if !ok {
				desc, _ := assertion["AssertDescription"].(string)
				failed = append(failed, name+": "+desc)
			}
		}
	}
	return failed, nil
}

// Eval resolves the intrinsic functions of a raw (long-form) value: Ref, Fn::GetAtt, Fn::Sub, Fn::Join,
// Fn::Select, Fn::Split, Fn::If, Fn::GetAZs and the condition functions (which yield a bool).
func (d *Deploy) Eval(v any) (any, error) {
	switch x := v.(type) {
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			r, err := d.Eval(e)
			if err != nil {
				return nil, err
			}
			if r != NoValue {
				out = append(out, r)
			}
		}
		return out, nil
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == FnRef || strings.HasPrefix(k, "Fn::") {
					return d.function(k, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			r, err := d.Eval(x[k])
			if err != nil {
				return nil, err
			}
			if r != NoValue {
				out[k] = r
			}
		}
		return out, nil
	}
	return v, nil
}

// String evaluates v and requires a string.
func (d *Deploy) String(v any) (string, error) {
	r, err := d.Eval(v)
	if err != nil {
		return "", err
	}
	s, ok := r.(string)
	if !ok {
		return "", fmt.Errorf("%s comes to %s, not a string", compact(v), compact(r))
	}
	return s, nil
}

func (d *Deploy) function(fn string, arg any) (any, error) {
	switch fn {
	case FnRef:
		name, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("Ref %s is not a name", compact(arg))
		}
		if name == "AWS::NoValue" {
			return NoValue, nil
		}
		if d.tpl.Resource(name) != nil {
			return "<" + name + ">", nil
		}
		return d.Param(name)
	case FnGetAtt:
		r := getAttOf(arg)
		if r.Malformed != "" {
			return nil, fmt.Errorf("%s", r)
		}
		return "<" + r.Target + "." + r.Attr + ">", nil
	case FnSub:
		return d.sub(arg)
	case "Fn::Join":
		args, ok := arg.([]any)
		if !ok || len(args) != 2 {
			return nil, fmt.Errorf("Fn::Join %s is not [delimiter, list]", compact(arg))
		}
		delim, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("Fn::Join delimiter %s is not a string", compact(args[0]))
		}
		list, err := d.Eval(args[1])
		if err != nil {
			return nil, err
		}
		items, ok := list.([]any)
		if !ok {
			return nil, fmt.Errorf("Fn::Join: %s is not a list", compact(list))
		}
		parts := make([]string, len(items))
		for i, it := range items {
			s, ok := it.(string)
			if !ok {
				return nil, fmt.Errorf("Fn::Join: item %s is not a string", compact(it))
			}
			parts[i] = s
		}
		return strings.Join(parts, delim), nil
	case "Fn::Select":
		args, ok := arg.([]any)
		if !ok || len(args) != 2 {
			return nil, fmt.Errorf("Fn::Select %s is not [index, list]", compact(arg))
		}
		idx, err := d.Eval(args[0])
		if err != nil {
			return nil, err
		}
		i, err := strconv.Atoi(strings.TrimSuffix(fmt.Sprint(idx), ".0"))
		list, lerr := d.Eval(args[1])
		if lerr != nil {
			return nil, lerr
		}
		items, isList := list.([]any)
		if err != nil || !isList || i < 0 || i >= len(items) {
			return nil, fmt.Errorf("Fn::Select: index %s out of %s", compact(idx), compact(list))
		}
		return items[i], nil
	case "Fn::Split":
		args, ok := arg.([]any)
		if !ok || len(args) != 2 {
			return nil, fmt.Errorf("Fn::Split %s is not [delimiter, string]", compact(arg))
		}
		delim, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("Fn::Split delimiter %s is not a string", compact(args[0]))
		}
		s, err := d.String(args[1])
		if err != nil {
			return nil, err
		}
		var out []any
		for _, p := range strings.Split(s, delim) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::If":
		args, ok := arg.([]any)
		if !ok || len(args) != 3 {
			return nil, fmt.Errorf("Fn::If %s is not [condition, then, else]", compact(arg))
		}
		name, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("Fn::If condition %s is not a name", compact(args[0]))
		}
		b, err := d.Condition(name)
		if err != nil {
			return nil, err
		}
		if b {
			return d.Eval(args[1])
		}
		return d.Eval(args[2])
	case "Fn::GetAZs":
		return []any{"<AZ0>", "<AZ1>", "<AZ2>"}, nil
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		return d.boolean(map[string]any{fn: arg}, 0)
	}
	return nil, fmt.Errorf("%s is not supported by Deploy.Eval", fn)
}

func (d *Deploy) sub(arg any) (any, error) {
	text, locals := "", map[string]any{}
	switch x := arg.(type) {
	case string:
		text = x
	case []any:
		var (
			m        map[string]any
			ok1, ok2 bool
		)
		if len(x) == 2 {
			text, ok1 = x[0].(string)
			m, ok2 = x[1].(map[string]any)
		}
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("Fn::Sub %s is not [string, map]", compact(arg))
		}
		for k, v := range m {
			r, err := d.String(v)
			if err != nil {
				return nil, fmt.Errorf("Fn::Sub variable %s: %w", k, err)
			}
			locals[k] = r
		}
	default:
		return nil, fmt.Errorf("Fn::Sub %s is not a string", compact(arg))
	}
	var firstErr error
	out := subVar.ReplaceAllStringFunc(text, func(m string) string {
		name := m[2 : len(m)-1]
		if lit, ok := strings.CutPrefix(name, "!"); ok {
			return "${" + lit + "}"
		}
		if v, ok := locals[name]; ok {
			return v.(string)
		}
		var r any
		var err error
		if target, attr, ok := strings.Cut(name, "."); ok {
			r, err = d.function(FnGetAtt, target+"."+attr)
		} else {
			r, err = d.function(FnRef, name)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		s, _ := r.(string)
		return s
	})
	return out, firstErr
}

func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return compact(v)
}
