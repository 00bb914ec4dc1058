// Package sdk writes wasm-reconciler plugins in Go: Kubernetes reconcilers that the
// wasm-reconciler host runs as sandboxed WebAssembly components (the WIT world `reconciler`
// of `wasm-reconciler:plugin@0.1.0`).
//
// A plugin is a `main` package that registers its [Reconciler] from `init` and has an empty
// `main`:
//
//	func init() { sdk.Export(MyReconciler{}) }
//	func main() {}
//
// It is built by the standard Go toolchain (Go 1.24 or newer) as a WASI preview1 reactor,
// `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`, and turned into a component with the
// WASI preview1 reactor adapter: guest-sdk/go/build.sh does both. The functions the component
// exports (`metadata`, `reconcile`) and imports (the event recorder, the client, the log) are
// bound by hand in abi_wasip1.go with `//go:wasmexport` and `//go:wasmimport`; on other
// platforms (`go test`) the same code runs against a [Host] such as the one in package testkit.
package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// GroupVersionKind names a Kubernetes kind; Group is empty for the core group.
type GroupVersionKind struct {
	Group   string
	Version string
	Kind    string
}

// APIVersion is the kind's `apiVersion`: "group/version", or "version" for the core group.
func (g GroupVersionKind) APIVersion() string {
	if g.Group == "" {
		return g.Version
	}
	return g.Group + "/" + g.Version
}

func (g GroupVersionKind) String() string {
	return g.APIVersion() + " " + g.Kind
}

// Metadata is what a plugin declares about itself; the host reads it once, at load time.
type Metadata struct {
	// Name is a DNS-1123 label: the controller, the field manager and the events' source.
	Name string
	// Reconciles is the kind the plugin reconciles (controller-runtime's `For`).
	Reconciles GroupVersionKind
	// Owns are the kinds the plugin creates and owns (`Owns`): it may get and apply them.
	Owns []GroupVersionKind
	// Reads are other kinds the plugin may only get.
	Reads []GroupVersionKind
}

// Response says what to do after a successful reconcile.
type Response struct {
	// RequeueAfter, when positive, reconciles again after that long even if nothing changes.
	RequeueAfter time.Duration
}

// Reconciler is a plugin's reconcile logic.
type Reconciler interface {
	// Metadata describes the plugin. It is called once, when the host loads the plugin, and
	// must not use the host (there is no Context).
	Metadata() Metadata
	// Reconcile brings the world in line with one object. Each call runs in a fresh
	// instance: nothing survives between calls. A [*TerminalError] (see [Terminal]) tells the
	// host not to retry until the object changes; any other error is retried with backoff.
	Reconcile(ctx *Context, req *Request) (Response, error)
}

// TerminalError is a reconcile error that retrying cannot fix (an invalid spec).
type TerminalError struct{ Err error }

func (e *TerminalError) Error() string { return e.Err.Error() }
func (e *TerminalError) Unwrap() error { return e.Err }

// Terminal wraps err (or a message formatted like fmt.Errorf) as a [*TerminalError].
func Terminal(format string, args ...any) error {
	return &TerminalError{Err: fmt.Errorf(format, args...)}
}

// Request is one call to Reconcile: the reconciled object as it is now.
type Request struct {
	// Raw is the object's JSON exactly as the API server returned it.
	Raw string
	// Object is Raw decoded, with numbers as json.Number.
	Object map[string]any
}

// NewRequest decodes an object's JSON into a Request.
func NewRequest(raw string) (*Request, error) {
	object, err := decode(raw)
	if err != nil {
		return nil, fmt.Errorf("the reconciled object is not a JSON object: %w", err)
	}
	return &Request{Raw: raw, Object: object}, nil
}

// Name is the object's metadata.name.
func (r *Request) Name() string { s, _ := Field(r.Object, "metadata", "name").(string); return s }

// Namespace is the object's metadata.namespace.
func (r *Request) Namespace() string {
	s, _ := Field(r.Object, "metadata", "namespace").(string)
	return s
}

// Generation is the object's metadata.generation, 0 if absent.
func (r *Request) Generation() int64 {
	n, _ := Field(r.Object, "metadata", "generation").(json.Number)
	g, _ := n.Int64()
	return g
}

// IsBeingDeleted reports whether the object has a deletionTimestamp.
func (r *Request) IsBeingDeleted() bool {
	return Field(r.Object, "metadata", "deletionTimestamp") != nil
}

// Field walks nested JSON objects: Field(obj, "spec", "replicas"). It returns nil when a
// step is missing or not an object.
func Field(value any, path ...string) any {
	for _, key := range path {
		object, ok := value.(map[string]any)
		if !ok {
			return nil
		}
		value = object[key]
	}
	return value
}

func decode(raw string) (map[string]any, error) {
	decoder := json.NewDecoder(bytes.NewReader([]byte(raw)))
	decoder.UseNumber()
	var object map[string]any
	if err := decoder.Decode(&object); err != nil {
		return nil, err
	}
	if object == nil {
		return nil, errors.New("null")
	}
	return object, nil
}

var exported Reconciler

// Export makes r the plugin's reconciler: call it from `init`. Inside a component the host
// calls r; elsewhere Export only records it (see [Exported]).
func Export(r Reconciler) { exported = r }

// Exported is the reconciler given to [Export], nil if none.
func Exported() Reconciler { return exported }

// Run runs one reconcile of the object raw (JSON) with r against host, as the component
// does: a panic becomes a transient error. Tests use it through package testkit.
func Run(host Host, r Reconciler, raw string) (response Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	req, err := NewRequest(raw)
	if err != nil {
		return Response{}, &TerminalError{Err: err}
	}
	ctx := &Context{host: host}
	ctx.Recorder = Recorder{host}
	ctx.Client = Client{host}
	ctx.Log = Logger{host}
	return r.Reconcile(ctx, req)
}
