package main

// The component itself, in the real host: builds it with guest-sdk/go/build.sh and runs
// `wasm-reconciler check` and `wasm-reconciler reconcile` (offline, no cluster) on it. This
// covers what the native tests cannot: the hand-written canonical ABI glue in
// guest-sdk/go/abi_wasip1.go. Skipped unless WASM_RECONCILER names the host binary, e.g.
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

func TestComponentInTheHost(t *testing.T) {
	host := os.Getenv("WASM_RECONCILER")
	if host == "" {
		t.Skip("set WASM_RECONCILER to the wasm-reconciler binary to test the built component")
	}
	out := t.TempDir()
	run(t, "../../guest-sdk/go/build.sh", "--out", out, ".")
	component := filepath.Join(out, "myresource_go.wasm")

	check := run(t, host, "check", component)
	for _, want := range []string{": ok", "contract:   wasm-reconciler:plugin@0.1.0", "name:       myresource-go",
		"reconciles: mygroup.example.com/v1alpha1 GoResource", "owns:       apps/v1 Deployment"} {
		if !strings.Contains(check, want) {
			t.Errorf("check output lacks %q:\n%s", want, check)
		}
	}

	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const resource = "apiVersion: mygroup.example.com/v1alpha1\nkind: GoResource\nmetadata: {name: demo-go, generation: 2}\n"
	const existing = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: demo-go}\n" +
		"spec: {replicas: 2, template: {spec: {containers: [{name: app, image: 'nginx:1.26'}]}}}\nstatus: {readyReplicas: 2}\n"
	for _, c := range []struct {
		name, objects, result, reason string
		applied                       int
	}{
		{"create", resource + "spec: {image: 'nginx:1.27', replicas: 2}\n", "done", "Created", 1},
		{"update", resource + "spec: {image: 'nginx:1.27', replicas: 3}\n" + existing, "done", "Updated", 1},
		{"invalid", resource + "spec: {image: ' ', replicas: -1}\n", "terminalError", "InvalidSpec", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			report := run(t, host, "reconcile", "--plugin", component, "-o", "json",
				"-f", "manifests/crd.yaml", "-f", write(c.name+".yaml", c.objects))
			var got struct {
				Outcome       struct{ Result, Message string }
				Events        []struct{ Type, Reason, Message string }
				Applied       []map[string]any
				StatusPatches []map[string]any `json:"statusPatches"`
			}
			if err := json.Unmarshal([]byte(report[strings.Index(report, "{"):]), &got); err != nil {
				t.Fatalf("%v in %s", err, report)
			}
			if got.Outcome.Result != c.result || len(got.Events) != 1 || got.Events[0].Reason != c.reason ||
				len(got.Applied) != c.applied || len(got.StatusPatches) != 1 {
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
