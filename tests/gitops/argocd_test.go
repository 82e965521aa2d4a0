package gitops

// Argo CD's health checks for Ferry's resources, run the way Argo CD runs
// them: gopher-lua (the interpreter Argo CD embeds), the libraries Argo CD
// opens, the object converted the way Argo CD converts it, and the returned
// table read the way Argo CD reads it. The cases are Argo CD's own layout,
// resource_customizations/<group>/<kind>/health_test.yaml with testdata/,
// so the directory can be offered upstream as it is.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

// The repository root, from tests/gitops.
const root = "../.."

// Argo CD's health statuses (gitops-engine's HealthStatusCode); anything
// else Argo CD reports as Unknown with "Lua returned an invalid health status".
var validStatuses = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true,
	"Healthy": true, "Degraded": true, "Missing": true,
}

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// health_test.yaml, as Argo CD's resource_customizations test reads it.
type healthTests struct {
	Tests []struct {
		HealthStatus healthStatus `json:"healthStatus"`
		InputPath    string       `json:"inputPath"`
	} `json:"tests"`
}

// runHealth mirrors argo-cd util/lua VM.runLua and ExecuteHealthLua.
// openLibs=false is a script from argocd-cm (resource.customizations.health.*,
// the way docs/gitops.md installs it): only package, base and table (and a
// reduced os, which Ferry's scripts do not use) are open, no string or math.
// openLibs=true is a script built into Argo CD (resource_customizations/),
// which gets every standard library.
func runHealth(script string, obj map[string]any, openLibs bool) (*healthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer l.Close()
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(pair.f), NRet: 0, Protect: true}, lua.LString(pair.n)); err != nil {
			return nil, err
		}
	}
	// Argo CD gives every script one second.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	b, err := luajson.Encode(ret)
	if err != nil {
		return nil, err
	}
	hs := &healthStatus{}
	if err := json.Unmarshal(b, hs); err != nil {
		return nil, err
	}
	if !validStatuses[hs.Status] {
		return &healthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return hs, nil
}

// decodeValue is Argo CD's conversion of the object into Lua values.
func decodeValue(L *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case []any:
		arr := L.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(L, item))
		}
		return arr
	case map[string]any:
		tbl := L.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), decodeValue(L, item))
		}
		return tbl
	}
	return lua.LNil
}

func readObject(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(b, &obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return obj
}

// customizations lists resource_customizations/<group>/<kind> directories.
func customizations(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "resource_customizations", "*", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no resource_customizations/<group>/<kind> directories under %s (%v)", root, err)
	}
	return dirs
}

func TestArgoCDHealth(t *testing.T) {
	for _, dir := range customizations(t) {
		kind := filepath.Base(dir)
		group := filepath.Base(filepath.Dir(dir))
		script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
		if err != nil {
			t.Fatalf("%s/%s: %v", group, kind, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
		if err != nil {
			t.Fatalf("%s/%s: %v", group, kind, err)
		}
		var tests healthTests
		if err := yaml.UnmarshalStrict(b, &tests); err != nil {
			t.Fatalf("%s/%s/health_test.yaml: %v", group, kind, err)
		}
		if len(tests.Tests) == 0 {
			t.Fatalf("%s/%s/health_test.yaml has no tests", group, kind)
		}
		listed := map[string]bool{}
		returned := map[string]bool{}
		for _, tc := range tests.Tests {
			listed[tc.InputPath] = true
			returned[tc.HealthStatus.Status] = true
			obj := readObject(t, filepath.Join(dir, tc.InputPath))
			if got := fmt.Sprint(obj["kind"]); got != kind {
				t.Errorf("%s/%s/%s: kind %q", group, kind, tc.InputPath, got)
			}
			for _, open := range []bool{false, true} {
				hs, err := runHealth(string(script), obj, open)
				name := fmt.Sprintf("%s/%s %s (openLibs=%v)", group, kind, tc.InputPath, open)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if *hs != tc.HealthStatus {
					t.Errorf("%s:\n  want %s: %q\n  got  %s: %q", name,
						tc.HealthStatus.Status, tc.HealthStatus.Message, hs.Status, hs.Message)
				}
			}
		}
		// Every object in testdata/ is a case, and the script is tested for
		// every status it can return.
		files, _ := filepath.Glob(filepath.Join(dir, "testdata", "*.yaml"))
		for _, f := range files {
			rel := "testdata/" + filepath.Base(f)
			if !listed[rel] {
				t.Errorf("%s/%s: %s is not used by health_test.yaml", group, kind, rel)
			}
		}
		for status := range validStatuses {
			if strings.Contains(string(script), `hs.status = "`+status+`"`) != returned[status] {
				t.Errorf("%s/%s: health.lua returns %s: %v; a case expects it: %v", group, kind, status,
					strings.Contains(string(script), `hs.status = "`+status+`"`), returned[status])
			}
		}
	}
}
