package sdk_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"wasm-reconciler.dev/sdk"
	"wasm-reconciler.dev/sdk/testkit"
)

var (
	thing  = sdk.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Thing"}
	config = sdk.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	secret = sdk.GroupVersionKind{Version: "v1", Kind: "Secret"}
)

// fn is a reconciler made of a function, declaring that it owns ConfigMaps.
type fn func(ctx *sdk.Context, req *sdk.Request) (sdk.Response, error)

func (fn) Metadata() sdk.Metadata {
	return sdk.Metadata{Name: "test", Reconciles: thing, Owns: []sdk.GroupVersionKind{config}}
}
func (f fn) Reconcile(ctx *sdk.Context, req *sdk.Request) (sdk.Response, error) { return f(ctx, req) }

func object() map[string]any {
	return map[string]any{
		"apiVersion": "example.com/v1", "kind": "Thing",
		"metadata": map[string]any{"name": "a", "namespace": "ns", "generation": 7},
	}
}

func TestGroupVersionKind(t *testing.T) {
	if thing.APIVersion() != "example.com/v1" || config.APIVersion() != "v1" || config.String() != "v1 ConfigMap" {
		t.Fatal(thing.APIVersion(), config.APIVersion(), config.String())
	}
}

func TestRequest(t *testing.T) {
	host := testkit.New()
	_, err := host.Reconcile(fn(func(ctx *sdk.Context, req *sdk.Request) (sdk.Response, error) {
		if req.Name() != "a" || req.Namespace() != "ns" || req.Generation() != 7 || req.IsBeingDeleted() {
			t.Errorf("request: %q %q %d %v", req.Name(), req.Namespace(), req.Generation(), req.IsBeingDeleted())
		}
		if !strings.Contains(req.Raw, `"generation":7`) {
			t.Errorf("raw: %s", req.Raw)
		}
		return sdk.Response{RequeueAfter: time.Second}, nil
	}), object())
	if err != nil {
		t.Fatal(err)
	}
}

func TestPanicBecomesATransientError(t *testing.T) {
	_, err := testkit.New().Reconcile(fn(func(*sdk.Context, *sdk.Request) (sdk.Response, error) {
		panic("boom")
	}), object())
	var terminal *sdk.TerminalError
	if err == nil || err.Error() != "panic: boom" || errors.As(err, &terminal) {
		t.Fatalf("err: %v", err)
	}
}

func TestTerminal(t *testing.T) {
	err := sdk.Terminal("bad %s", "spec")
	var terminal *sdk.TerminalError
	if !errors.As(err, &terminal) || err.Error() != "bad spec" {
		t.Fatalf("err: %v", err)
	}
}

func TestRecorderAndLog(t *testing.T) {
	host := testkit.New()
	_, err := host.Reconcile(fn(func(ctx *sdk.Context, _ *sdk.Request) (sdk.Response, error) {
		if err := ctx.Recorder.Eventf(sdk.Normal, "Made", "made %d", 2); err != nil {
			return sdk.Response{}, err
		}
		if err := ctx.Recorder.AnnotatedEventf(map[string]string{"k": "v"}, sdk.Warning, "Odd", "odd"); err != nil {
			return sdk.Response{}, err
		}
		var refused *sdk.EventError
		if err := ctx.Recorder.Event(sdk.Normal, "not camel", "x"); !errors.As(err, &refused) || refused.Kind != sdk.InvalidReason {
			t.Errorf("invalid reason: %v", err)
		}
		ctx.Log.Infof("hello %s", "log")
		return sdk.Response{}, nil
	}), object())
	if err != nil {
		t.Fatal(err)
	}
	if len(host.Events) != 2 || host.Events[0].Message != "made 2" || host.Events[1].Annotations["k"] != "v" {
		t.Fatalf("events: %+v", host.Events)
	}
	if len(host.Logs) != 1 || host.Logs[0].Level != sdk.LevelInfo || host.Logs[0].Message != "hello log" {
		t.Fatalf("logs: %+v", host.Logs)
	}
}

func TestClient(t *testing.T) {
	host := testkit.New(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "seen"}})
	_, err := host.Reconcile(fn(func(ctx *sdk.Context, _ *sdk.Request) (sdk.Response, error) {
		if got, err := ctx.Client.Get(config, "seen"); err != nil || got == nil {
			t.Errorf("get seen: %v %v", got, err)
		}
		if got, err := ctx.Client.Get(config, "absent"); err != nil || got != nil {
			t.Errorf("get absent: %v %v", got, err)
		}
		var refused *sdk.ClientError
		if _, err := ctx.Client.Get(secret, "x"); !errors.As(err, &refused) || refused.Kind != sdk.Forbidden {
			t.Errorf("get undeclared: %v", err)
		}
		applied, err := ctx.Client.Apply(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"made"}}`)
		if err != nil || sdk.Field(applied, "metadata", "namespace") != "ns" {
			t.Errorf("apply: %v %v", applied, err)
		}
		stored, err := ctx.Client.PatchStatus(map[string]any{"phase": "Done"})
		if err != nil || sdk.Field(stored, "status", "phase") != "Done" {
			t.Errorf("patch status: %v %v", stored, err)
		}
		return sdk.Response{}, nil
	}), object())
	if err != nil {
		t.Fatal(err)
	}
	if host.Object(config, "made") == nil {
		t.Fatal("apply did not store the object")
	}
}
