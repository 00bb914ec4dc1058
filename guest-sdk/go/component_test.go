package sdk_test

// The canonical ABI glue (abi_wasip1.go) in the real host: builds internal/abitest with
// build.sh and runs `wasm-reconciler reconcile` (offline) on it for each outcome. Skipped
// unless WASM_RECONCILER names the host binary:
//
//	cargo build -p wasm-reconciler && WASM_RECONCILER=$CARGO_TARGET_DIR/debug/wasm-reconciler go test ./...

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const objects = `apiVersion: mygroup.example.com/v1alpha1
kind: GoResource
metadata: {name: demo-go, generation: GENERATION}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
data: {k: dg==}
`

func TestABIInTheHost(t *testing.T) {
	host := os.Getenv("WASM_RECONCILER")
	if host == "" {
		t.Skip("set WASM_RECONCILER to the wasm-reconciler binary to test the ABI in the host")
	}
	out := t.TempDir()
	run(t, "./build.sh", "--out", out, "internal/abitest")
	component := filepath.Join(out, "abitest.wasm")

	check := run(t, host, "check", component)
	for _, want := range []string{": ok", "owns:       v1 ConfigMap, apps/v1 Deployment", "reads:      v1 Secret"} {
		if !strings.Contains(check, want) {
			t.Errorf("check output lacks %q:\n%s", want, check)
		}
	}

	for _, c := range []struct{ generation, result, message, requeue string }{
		{"1", "done", "", "1500ms"},
		{"5", "terminalError", "five", ""},
		{"6", "transientError", "six", ""},
		{"7", "transientError", "panic: seven", ""},
	} {
		t.Run("generation "+c.generation, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "objects.yaml")
			if err := os.WriteFile(file, []byte(strings.Replace(objects, "GENERATION", c.generation, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			report := run(t, host, "reconcile", "--plugin", component, "-o", "json", "-f", file)
			var got struct {
				Outcome struct {
					Result, Message string
					RequeueAfter    string `json:"requeueAfter"`
				}
				Events []struct {
					Type, Reason, Message string
					Annotations           map[string]string
				}
				RefusedEvents int `json:"refusedEvents"`
				Applied       []map[string]any
				StatusPatches []map[string]any `json:"statusPatches"`
			}
			if err := json.Unmarshal([]byte(report[strings.Index(report, "{"):]), &got); err != nil {
				t.Fatalf("%v in %s", err, report)
			}
			if got.Outcome.Result != c.result || got.Outcome.Message != c.message || got.Outcome.RequeueAfter != c.requeue {
				t.Fatalf("outcome %+v, want %+v", got.Outcome, c)
			}
			if len(got.Events) != 1 || got.Events[0].Type != "Warning" || got.Events[0].Reason != "Annotated" ||
				got.Events[0].Message != "with 2 annotations" || got.Events[0].Annotations["example.com/b"] != "two" ||
				got.RefusedEvents != 1 || len(got.Applied) != 1 || len(got.StatusPatches) != 1 {
				t.Fatalf("unexpected report:\n%s", report)
			}
		})
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
