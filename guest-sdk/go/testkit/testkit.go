// Package testkit runs a wasm-reconciler Go plugin's Reconcile natively (`go test`) against
// a fake host that behaves like the real one where a plugin can tell: it refuses kinds the
// plugin did not declare, checks event reasons, sets the namespace on applied objects and
// merges status patches into the reconciled object. It records everything the plugin did.
package testkit

import (
	"encoding/json"
	"fmt"
	"regexp"

	"wasm-reconciler.dev/sdk"
)

// Event is a recorded event.
type Event struct {
	Type        sdk.EventType
	Reason      string
	Message     string
	Annotations map[string]string
}

// LogLine is a log line the plugin wrote.
type LogLine struct {
	Level   sdk.Level
	Message string
}

// Host is a fake host: seed it with objects, call Reconcile, then look at what was recorded.
type Host struct {
	// Events, Applied (as the plugin sent them), StatusPatches and Logs, in order.
	Events        []Event
	Applied       []map[string]any
	StatusPatches []map[string]any
	Logs          []LogLine
	// ApplyError, when set, is returned by every apply.
	ApplyError error

	metadata sdk.Metadata
	object   map[string]any
	objects  map[string]map[string]any
}

// New returns a fake host whose `get` sees objects.
func New(objects ...map[string]any) *Host {
	h := &Host{objects: map[string]map[string]any{}}
	for _, o := range objects {
		h.Add(o)
	}
	return h
}

func key(apiVersion, kind, name string) string { return apiVersion + "|" + kind + "|" + name }

func str(object map[string]any, path ...string) string {
	s, _ := sdk.Field(object, path...).(string)
	return s
}

// Add puts (or replaces) an object that `get` can see.
func (h *Host) Add(object map[string]any) {
	h.objects[key(str(object, "apiVersion"), str(object, "kind"), str(object, "metadata", "name"))] = roundTrip(object)
}

// Object returns the stored object of this kind and name, nil if none.
func (h *Host) Object(kind sdk.GroupVersionKind, name string) map[string]any {
	return h.objects[key(kind.APIVersion(), kind.Kind, name)]
}

// Reconciled is the reconciled object as it is now (status patches merged).
func (h *Host) Reconciled() map[string]any { return h.object }

// Reconcile runs r.Reconcile on object as the component would, with this host.
func (h *Host) Reconcile(r sdk.Reconciler, object map[string]any) (sdk.Response, error) {
	h.metadata = r.Metadata()
	h.object = roundTrip(object)
	h.Add(h.object)
	raw, err := json.Marshal(h.object)
	if err != nil {
		return sdk.Response{}, err
	}
	return sdk.Run(h, r, string(raw))
}

// roundTrip copies a JSON value through encoding/json, numbers as json.Number like the SDK.
func roundTrip(object map[string]any) map[string]any {
	raw, err := json.Marshal(object)
	if err != nil {
		panic(err)
	}
	req, err := sdk.NewRequest(string(raw))
	if err != nil {
		panic(err)
	}
	return req.Object
}

var reason = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)

func (h *Host) Event(t sdk.EventType, r, message string) error {
	return h.AnnotatedEvent(nil, t, r, message)
}

func (h *Host) AnnotatedEvent(annotations [][2]string, t sdk.EventType, r, message string) error {
	if len(r) > 128 || !reason.MatchString(r) {
		return &sdk.EventError{Kind: sdk.InvalidReason, Message: fmt.Sprintf("%q is not UpperCamelCase", r)}
	}
	var m map[string]string
	if len(annotations) > 0 {
		m = map[string]string{}
		for _, kv := range annotations {
			m[kv[0]] = kv[1]
		}
	}
	h.Events = append(h.Events, Event{Type: t, Reason: r, Message: message, Annotations: m})
	return nil
}

func (h *Host) declared(kind sdk.GroupVersionKind, write bool) bool {
	if !write && (kind == h.metadata.Reconciles || contains(h.metadata.Reads, kind)) {
		return true
	}
	return contains(h.metadata.Owns, kind)
}

func contains(kinds []sdk.GroupVersionKind, kind sdk.GroupVersionKind) bool {
	for _, k := range kinds {
		if k == kind {
			return true
		}
	}
	return false
}

func (h *Host) Get(kind sdk.GroupVersionKind, name string) (string, bool, error) {
	if !h.declared(kind, false) {
		return "", false, &sdk.ClientError{Kind: sdk.Forbidden, Message: "get " + kind.String() + " is not declared"}
	}
	object, ok := h.objects[key(kind.APIVersion(), kind.Kind, name)]
	if !ok {
		return "", false, nil
	}
	raw, err := json.Marshal(object)
	return string(raw), true, err
}

func (h *Host) Apply(text string) (string, error) {
	req, err := sdk.NewRequest(text)
	if err != nil {
		return "", &sdk.ClientError{Kind: sdk.Invalid, Message: err.Error()}
	}
	object := req.Object
	h.Applied = append(h.Applied, roundTrip(object))
	if h.ApplyError != nil {
		return "", h.ApplyError
	}
	apiVersion, kindName, name := str(object, "apiVersion"), str(object, "kind"), str(object, "metadata", "name")
	if apiVersion == "" || kindName == "" || name == "" {
		return "", &sdk.ClientError{Kind: sdk.Invalid, Message: "apiVersion, kind and metadata.name are required"}
	}
	kind := sdk.GroupVersionKind{Version: apiVersion, Kind: kindName}
	for i := range apiVersion {
		if apiVersion[i] == '/' {
			kind.Group, kind.Version = apiVersion[:i], apiVersion[i+1:]
		}
	}
	if !h.declared(kind, true) {
		return "", &sdk.ClientError{Kind: sdk.Forbidden, Message: "apply " + kind.String() + " is not declared as owned"}
	}
	metadata, _ := object["metadata"].(map[string]any)
	metadata["namespace"] = str(h.object, "metadata", "namespace")
	h.objects[key(apiVersion, kindName, name)] = object
	raw, err := json.Marshal(object)
	return string(raw), err
}

func (h *Host) PatchStatus(text string) (string, error) {
	req, err := sdk.NewRequest(text)
	if err != nil {
		return "", &sdk.ClientError{Kind: sdk.Invalid, Message: err.Error()}
	}
	h.StatusPatches = append(h.StatusPatches, req.Object)
	status, _ := h.object["status"].(map[string]any)
	if status == nil {
		status = map[string]any{}
	}
	h.object["status"] = mergePatch(status, req.Object)
	raw, err := json.Marshal(h.object)
	return string(raw), err
}

// mergePatch applies a JSON merge patch (RFC 7386) of objects.
func mergePatch(target, patch map[string]any) map[string]any {
	for k, v := range patch {
		if v == nil {
			delete(target, k)
			continue
		}
		if p, ok := v.(map[string]any); ok {
			t, _ := target[k].(map[string]any)
			if t == nil {
				t = map[string]any{}
			}
			target[k] = mergePatch(t, p)
			continue
		}
		target[k] = v
	}
	return target
}

func (h *Host) Log(level sdk.Level, message string) {
	h.Logs = append(h.Logs, LogLine{Level: level, Message: message})
}
