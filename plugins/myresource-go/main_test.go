package main

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"wasm-reconciler.dev/sdk"
	"wasm-reconciler.dev/sdk/testkit"
)

func goResource(spec map[string]any, generation int) map[string]any {
	object := map[string]any{
		"apiVersion": "mygroup.example.com/v1alpha1",
		"kind":       "GoResource",
		"metadata":   map[string]any{"name": "demo-go", "namespace": "default", "generation": generation},
	}
	if spec != nil {
		object["spec"] = spec
	}
	return object
}

func deployment(image string, replicas, ready int) map[string]any {
	d := DesiredDeployment("demo-go", Spec{Image: image, Replicas: int32(replicas)})
	d["status"] = map[string]any{"readyReplicas": ready}
	return d
}

func valid() map[string]any { return map[string]any{"image": "nginx:1.27", "replicas": 2} }

func TestMetadata(t *testing.T) {
	m := Reconciler{}.Metadata()
	if m.Name != "myresource-go" || m.Reconciles.Kind != "GoResource" || len(m.Owns) != 1 || m.Owns[0] != Deployment {
		t.Fatalf("metadata: %+v", m)
	}
	if sdk.Exported() == nil {
		t.Fatal("init did not export the reconciler")
	}
}

func TestCreatesTheDeployment(t *testing.T) {
	host := testkit.New()
	if _, err := host.Reconcile(Reconciler{}, goResource(valid(), 1)); err != nil {
		t.Fatal(err)
	}
	if len(host.Events) != 1 || host.Events[0].Reason != "Created" || host.Events[0].Message != "Created deployment demo-go" {
		t.Fatalf("events: %+v", host.Events)
	}
	applied := host.Object(Deployment, "demo-go")
	if sdk.Field(applied, "metadata", "namespace") != "default" {
		t.Fatalf("applied: %v", applied)
	}
	want := map[string]any{
		"observedGeneration": json.Number("1"), "deployment": "demo-go", "image": "nginx:1.27",
		"replicas": json.Number("2"), "readyReplicas": json.Number("0"),
	}
	if got := host.Reconciled()["status"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("status: %v, want %v", got, want)
	}
}

func TestLeavesAnUpToDateDeploymentAlone(t *testing.T) {
	host := testkit.New(deployment("nginx:1.27", 2, 2))
	if _, err := host.Reconcile(Reconciler{}, goResource(valid(), 1)); err != nil {
		t.Fatal(err)
	}
	if len(host.Events) != 0 || len(host.Applied) != 0 {
		t.Fatalf("events %v, applied %v", host.Events, host.Applied)
	}
	if got := sdk.Field(host.Reconciled(), "status", "readyReplicas"); got != json.Number("2") {
		t.Fatalf("readyReplicas: %v", got)
	}
}

func TestUpdatesAChangedDeployment(t *testing.T) {
	host := testkit.New(deployment("nginx:1.26", 1, 1))
	if _, err := host.Reconcile(Reconciler{}, goResource(valid(), 2)); err != nil {
		t.Fatal(err)
	}
	want := "Updated deployment demo-go: image nginx:1.26 -> nginx:1.27, replicas 1 -> 2"
	if len(host.Events) != 1 || host.Events[0].Reason != "Updated" || host.Events[0].Message != want {
		t.Fatalf("events: %+v", host.Events)
	}
	if len(host.Applied) != 1 {
		t.Fatalf("applied: %v", host.Applied)
	}
}

func TestInvalidSpecIsTerminalAndReportedOnce(t *testing.T) {
	host := testkit.New()
	_, err := host.Reconcile(Reconciler{}, goResource(map[string]any{"image": " ", "replicas": -1}, 3))
	var terminal *sdk.TerminalError
	if !errors.As(err, &terminal) {
		t.Fatalf("want a terminal error, got %v", err)
	}
	problem := "spec.image is empty; spec.replicas must not be negative, got -1"
	if err.Error() != "invalid spec: "+problem {
		t.Fatalf("error: %v", err)
	}
	if len(host.Events) != 1 || host.Events[0].Type != sdk.Warning || host.Events[0].Reason != "InvalidSpec" || host.Events[0].Message != problem {
		t.Fatalf("events: %+v", host.Events)
	}
	if len(host.Applied) != 0 {
		t.Fatalf("applied: %v", host.Applied)
	}

	// The same generation again (e.g. requeued by the Deployment): no second event or patch.
	again := testkit.New()
	_, err = again.Reconcile(Reconciler{}, host.Reconciled())
	if !errors.As(err, &terminal) || len(again.Events) != 0 || len(again.StatusPatches) != 0 {
		t.Fatalf("err %v, events %v, patches %v", err, again.Events, again.StatusPatches)
	}
}

func TestFixedSpecClearsInvalidSpec(t *testing.T) {
	object := goResource(valid(), 4)
	object["status"] = map[string]any{"observedGeneration": 3, "invalidSpec": "spec is missing"}
	host := testkit.New()
	if _, err := host.Reconcile(Reconciler{}, object); err != nil {
		t.Fatal(err)
	}
	if _, present := host.Reconciled()["status"].(map[string]any)["invalidSpec"]; present {
		t.Fatalf("invalidSpec still set: %v", host.Reconciled()["status"])
	}
}

func TestBeingDeletedDoesNothing(t *testing.T) {
	object := goResource(valid(), 1)
	object["metadata"].(map[string]any)["deletionTimestamp"] = "2026-01-01T00:00:00Z"
	host := testkit.New()
	if _, err := host.Reconcile(Reconciler{}, object); err != nil {
		t.Fatal(err)
	}
	if len(host.Events)+len(host.Applied)+len(host.StatusPatches) != 0 {
		t.Fatalf("did something: %+v", host)
	}
}

func TestApiErrorsAreTransient(t *testing.T) {
	host := testkit.New()
	host.ApplyError = &sdk.ClientError{Kind: sdk.API, Status: 409, Message: "conflict"}
	_, err := host.Reconcile(Reconciler{}, goResource(valid(), 1))
	var terminal *sdk.TerminalError
	if err == nil || errors.As(err, &terminal) || !strings.Contains(err.Error(), "apply deployment demo-go: API server: 409 conflict") {
		t.Fatalf("err: %v", err)
	}
}

func TestParseSpec(t *testing.T) {
	for _, c := range []struct {
		spec    string
		want    Spec
		problem string
	}{
		{`{"spec":{"image":"nginx","replicas":0}}`, Spec{"nginx", 0}, ""},
		{`{}`, Spec{}, "spec is missing"},
		{`{"spec":{}}`, Spec{}, "spec.image is missing; spec.replicas is missing"},
		{`{"spec":{"image":3,"replicas":"2"}}`, Spec{}, `spec.image must be a string, got 3; spec.replicas must be an integer, got "2"`},
		{`{"spec":{"image":"x","replicas":2.5}}`, Spec{}, "spec.replicas must be an integer, got 2.5"},
		{`{"spec":{"image":"x","replicas":true}}`, Spec{}, "spec.replicas must be an integer, got true"},
		{`{"spec":{"image":"x","replicas":2147483648}}`, Spec{}, "spec.replicas must fit in an int32, got 2147483648"},
		{`{"spec":{"image":"x","replicas":99999999999999999999}}`, Spec{}, "spec.replicas must fit in an int32, got 99999999999999999999"},
	} {
		req, err := sdk.NewRequest(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		spec, problem := ParseSpec(req.Object)
		if problem != c.problem || (problem == "" && spec != c.want) {
			t.Errorf("%s: got %+v %q, want %+v %q", c.spec, spec, problem, c.want, c.problem)
		}
	}
}
