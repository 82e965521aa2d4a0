package gitops

// What Flux and Helm make of the same objects: kstatus
// (sigs.k8s.io/cli-utils, used by `helm --wait` in Helm 4 and by Flux's
// health checks), and the healthCheckExprs of docs/gitops.md evaluated by
// Flux's own CEL status evaluator (github.com/fluxcd/pkg/runtime/cel, what
// kustomize-controller runs for healthCheckExprs).

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/kustomize"
	fluxcel "github.com/fluxcd/pkg/runtime/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// expect.yaml: per object under resource_customizations, the status kstatus
// computes and the one Flux's healthCheckExprs give.
type expectation struct {
	Kstatus string `json:"kstatus"`
	Flux    string `json:"flux"`
}

func expectations(t *testing.T) map[string]expectation {
	t.Helper()
	b, err := os.ReadFile("expect.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]expectation
	if err := yaml.UnmarshalStrict(b, &e); err != nil {
		t.Fatalf("expect.yaml: %v", err)
	}
	return e
}

// objects returns every test object, keyed by its path under
// resource_customizations/.
func objects(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	out := map[string]*unstructured.Unstructured{}
	for _, dir := range customizations(t) {
		files, _ := filepath.Glob(filepath.Join(dir, "testdata", "*.yaml"))
		for _, f := range files {
			rel, _ := filepath.Rel(filepath.Join(root, "resource_customizations"), f)
			// As a client reads it from the API: integers as int64 (kstatus
			// refuses a float64 generation).
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			j, err := yaml.YAMLToJSON(b)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(j); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out[rel] = u
		}
	}
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

func TestExpectationsCoverEveryObject(t *testing.T) {
	exp := expectations(t)
	objs := objects(t)
	for _, k := range sortedKeys(objs) {
		if _, ok := exp[k]; !ok {
			t.Errorf("expect.yaml has no entry for %s", k)
		}
	}
	for _, k := range sortedKeys(exp) {
		if _, ok := objs[k]; !ok {
			t.Errorf("expect.yaml names %s, which does not exist", k)
		}
	}
}

func TestKstatus(t *testing.T) {
	exp := expectations(t)
	objs := objects(t)
	for _, k := range sortedKeys(objs) {
		res, err := status.Compute(objs[k])
		if err != nil {
			t.Errorf("%s: kstatus: %v", k, err)
			continue
		}
		t.Logf("%-60s kstatus %-11s %s", k, res.Status, res.Message)
		if want := exp[k].Kstatus; string(res.Status) != want {
			t.Errorf("%s: kstatus %s (%q), expected %s", k, res.Status, res.Message, want)
		}
	}
}

// docHealthChecks reads the healthCheckExprs of every Flux Kustomization in
// docs/gitops.md's YAML blocks.
func docHealthChecks(t *testing.T) [][]kustomize.CustomHealthCheck {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "docs/gitops.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```yaml"):
			cur = &strings.Builder{}
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	var found [][]kustomize.CustomHealthCheck
	for _, block := range blocks {
		for _, doc := range strings.Split(block, "\n---\n") {
			var k struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Spec       struct {
					HealthCheckExprs []kustomize.CustomHealthCheck `json:"healthCheckExprs"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal([]byte(doc), &k); err != nil {
				t.Fatalf("docs/gitops.md: a YAML block does not parse: %v\n%s", err, doc)
			}
			if k.Kind == "Kustomization" && len(k.Spec.HealthCheckExprs) > 0 {
				found = append(found, k.Spec.HealthCheckExprs)
			}
		}
	}
	if len(found) == 0 {
		t.Fatal("docs/gitops.md has no Kustomization with healthCheckExprs")
	}
	return found
}

func TestFluxHealthCheckExprs(t *testing.T) {
	exp := expectations(t)
	objs := objects(t)
	covered := map[string]bool{}
	for i, checks := range docHealthChecks(t) {
		// The status reader kustomize-controller builds from healthCheckExprs;
		// an expression that cannot be evaluated makes the object Unknown
		// (with the error), and Flux keeps polling it.
		newReader, err := fluxcel.NewStatusReader(checks)
		if err != nil {
			t.Fatalf("docs/gitops.md Kustomization %d: %v", i+1, err)
		}
		reader := newReader(nil)
		kinds := map[string]bool{}
		for _, c := range checks {
			kinds[c.APIVersion+"/"+c.Kind] = true
			covered[c.APIVersion+"/"+c.Kind] = true
		}
		for _, k := range sortedKeys(objs) {
			u := objs[k]
			if !kinds[u.GetAPIVersion()+"/"+u.GetKind()] {
				continue
			}
			res, err := reader.ReadStatusForObject(context.Background(), nil, u)
			if err != nil {
				t.Errorf("%s: Flux status reader: %v", k, err)
				continue
			}
			t.Logf("%-60s flux    %-11s %v", k, res.Status, res.Error)
			if want := exp[k].Flux; string(res.Status) != want {
				t.Errorf("%s: Flux healthCheckExprs (Kustomization %d) give %s (%v), expected %s", k, i+1, res.Status, res.Error, want)
			}
		}
	}
	for _, k := range sortedKeys(objs) {
		u := objs[k]
		if !covered[u.GetAPIVersion()+"/"+u.GetKind()] {
			t.Errorf("no Kustomization in docs/gitops.md has healthCheckExprs for %s %s", u.GetAPIVersion(), u.GetKind())
		}
	}
}
