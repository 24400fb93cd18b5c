package testenv

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// AssertConstantTimeComparisons reads the Go source (tests excluded) of the package in dir and fails t where
// a signature or MAC could be compared in variable time: an == or != between two values one of which is named
// like a signature (…sig…, …mac…), or bytes.Equal / bytes.Compare / strings.Compare / strings.EqualFold on
// one. Length checks (len(x)) and comparisons with literals are fine. Each function named in mustUse must call
// crypto/subtle.ConstantTimeCompare or crypto/hmac.Equal. Timing cannot be asserted reliably in a test; the
// code that decides it can.
func AssertConstantTimeComparisons(t testing.TB, dir string, mustUse ...string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	seen := map[string]bool{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			constantTime := false
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.BinaryExpr:
					if (n.Op == token.EQL || n.Op == token.NEQ) && (secretNamed(n.X) || secretNamed(n.Y)) &&
						!literalOrLen(n.X) && !literalOrLen(n.Y) {
						t.Errorf("%s: %s compares a signature with %s: use subtle.ConstantTimeCompare or hmac.Equal", fset.Position(n.Pos()), fn.Name.Name, n.Op)
					}
				case *ast.CallExpr:
					switch callName(n) {
					case "subtle.ConstantTimeCompare", "hmac.Equal":
						constantTime = true
					case "bytes.Equal", "bytes.Compare", "strings.Compare", "strings.EqualFold":
						for _, a := range n.Args {
							if secretNamed(a) {
								t.Errorf("%s: %s compares a signature with %s: use subtle.ConstantTimeCompare or hmac.Equal", fset.Position(n.Pos()), fn.Name.Name, callName(n))
							}
						}
					}
				}
				return true
			})
			for _, name := range mustUse {
				if fn.Name.Name == name {
					seen[name] = true
					if !constantTime {
						t.Errorf("%s: %s does not compare in constant time (subtle.ConstantTimeCompare or hmac.Equal)", fset.Position(fn.Pos()), name)
					}
				}
			}
		}
	}
	for _, name := range mustUse {
		if !seen[name] {
			t.Errorf("function %s not found in %s", name, dir)
		}
	}
}

// secretNamed reports an identifier or field whose name says it holds a signature or MAC.
func secretNamed(e ast.Expr) bool {
	var name string
	switch e := e.(type) {
	case *ast.Ident:
		name = e.Name
	case *ast.SelectorExpr:
		name = e.Sel.Name
	case *ast.CallExpr: // string(sig), sig[:]-like conversions of a signature
		if len(e.Args) == 1 {
			return secretNamed(e.Args[0])
		}
		return false
	case *ast.SliceExpr:
		return secretNamed(e.X)
	case *ast.ParenExpr:
		return secretNamed(e.X)
	default:
		return false
	}
	l := strings.ToLower(name)
	return strings.Contains(l, "sig") || strings.Contains(l, "mac")
}

func literalOrLen(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return e.Name == "nil"
	case *ast.CallExpr:
		return callName(e) == "len"
	}
	return false
}

func callName(c *ast.CallExpr) string {
	switch f := c.Fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		if x, ok := f.X.(*ast.Ident); ok {
			return x.Name + "." + f.Sel.Name
		}
	}
	return ""
}
