// Command abitest is a plugin that exercises every import and export of the canonical ABI
// glue (abi_wasip1.go) inside the real host: component_test.go builds it and runs it with
// `wasm-reconciler reconcile`. It checks what the host returns itself and fails the
// reconcile (terminally, with the reason) on the first surprise; the object's generation
// picks the outcome to return.
package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"wasm-reconciler.dev/sdk"
)

var (
	kind      = sdk.GroupVersionKind{Group: "mygroup.example.com", Version: "v1alpha1", Kind: "GoResource"}
	configMap = sdk.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	secret    = sdk.GroupVersionKind{Version: "v1", Kind: "Secret"}
	pod       = sdk.GroupVersionKind{Version: "v1", Kind: "Pod"}
)

func init() { sdk.Export(abiTest{}) }
func main() {}

type abiTest struct{}

func (abiTest) Metadata() sdk.Metadata {
	return sdk.Metadata{
		Name:       "abitest",
		Reconciles: kind,
		Owns:       []sdk.GroupVersionKind{configMap, {Group: "apps", Version: "v1", Kind: "Deployment"}},
		Reads:      []sdk.GroupVersionKind{secret},
	}
}

func (abiTest) Reconcile(ctx *sdk.Context, req *sdk.Request) (sdk.Response, error) {
	if err := exercise(ctx, req); err != nil {
		return sdk.Response{}, sdk.Terminal("abi: %v", err)
	}
	switch req.Generation() {
	case 5:
		return sdk.Response{}, sdk.Terminal("five")
	case 6:
		return sdk.Response{}, errors.New("six")
	case 7:
		panic("seven")
	}
	return sdk.Response{RequeueAfter: 1500 * time.Millisecond}, nil
}

func exercise(ctx *sdk.Context, req *sdk.Request) error {
	if req.Name() != "demo-go" || req.Namespace() != "default" {
		return fmt.Errorf("request: %q in %q", req.Name(), req.Namespace())
	}
	ctx.Log.Infof("generation %d", req.Generation())

	annotations := map[string]string{"example.com/a": "1", "example.com/b": "two"}
	if err := ctx.Recorder.AnnotatedEventf(annotations, sdk.Warning, "Annotated", "with %d annotations", 2); err != nil {
		return fmt.Errorf("annotated event: %w", err)
	}
	var refused *sdk.EventError
	if err := ctx.Recorder.Event(sdk.Normal, "not camel", "x"); !errors.As(err, &refused) || refused.Kind != sdk.InvalidReason || refused.Message == "" {
		return fmt.Errorf("event with an invalid reason: %v", err)
	}

	var denied *sdk.ClientError
	if _, err := ctx.Client.Get(pod, "p"); !errors.As(err, &denied) || denied.Kind != sdk.Forbidden {
		return fmt.Errorf("get of an undeclared kind: %v", err)
	}
	s, err := ctx.Client.Get(secret, "s")
	if err != nil || sdk.Field(s, "data", "k") != "dg==" {
		return fmt.Errorf("get secret s: %v %v", s, err)
	}
	if absent, err := ctx.Client.Get(secret, "absent"); err != nil || absent != nil {
		return fmt.Errorf("get an absent secret: %v %v", absent, err)
	}
	if _, err := ctx.Client.Apply(`{"apiVersion":"v1","kind":"ConfigMap"}`); !errors.As(err, &denied) || denied.Kind != sdk.Invalid {
		return fmt.Errorf("apply without a name: %v", err)
	}

	// Grow the Go heap well past its first arena, then move a large string both ways.
	var heap [][]byte
	for range 20 {
		heap = append(heap, make([]byte, 1<<20))
	}
	big := strings.Repeat("abcdefghij", 10_000)
	applied, err := ctx.Client.Apply(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "big"},
		"data":     map[string]any{"big": big},
	})
	if err != nil || sdk.Field(applied, "data", "big") != big || sdk.Field(applied, "metadata", "namespace") != "default" {
		return fmt.Errorf("apply a large ConfigMap: %v", err)
	}
	ctx.Log.Debugf("heap: %d MiB", len(heap))

	stored, err := ctx.Client.PatchStatus(map[string]any{"phase": "Tested"})
	if err != nil || sdk.Field(stored, "status", "phase") != "Tested" {
		return fmt.Errorf("patch status: %v %v", sdk.Field(stored, "status"), err)
	}
	return nil
}
