// Command myresource-go is the example wasm-reconciler plugin in Go: it runs a Deployment for
// each GoResource.
//
// It does what the Rust example (plugins/myresource) does for MyResource, for its own kind,
// GoResource (mygroup.example.com/v1alpha1, namespaced, with a status subresource, the same
// schema): the examples can run in one host without reconciling the same objects. A
// GoResource asks for an image and a number of replicas:
//
//	apiVersion: mygroup.example.com/v1alpha1
//	kind: GoResource
//	metadata: {name: demo-go, namespace: default}
//	spec: {image: "nginx:1.27", replicas: 2}
//
// The plugin keeps a Deployment of the same name in line with it, records Created and
// Updated events when it changes the Deployment, and reports in the status what it runs. An
// invalid spec gets a Warning InvalidSpec event, status.invalidSpec, and a terminal error:
// nothing to retry until someone fixes the spec.
//
// Build: guest-sdk/go/build.sh --out DIR plugins/myresource-go, then put
// DIR/myresource_go.wasm in the host's plugins directory. Test: go test ./...
package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"wasm-reconciler.dev/sdk"
)

var (
	// GoResource is the kind this plugin reconciles.
	GoResource = sdk.GroupVersionKind{Group: "mygroup.example.com", Version: "v1alpha1", Kind: "GoResource"}
	// Deployment is the kind it owns: one per GoResource, of the same name.
	Deployment = sdk.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
)

const (
	// PluginName names the controller, the field manager and the events' source.
	PluginName = "myresource-go"
	// Container is the name of the one container in each Deployment.
	Container = "app"
)

func init() { sdk.Export(Reconciler{}) }

// main is never run: the component is a reactor, whose host calls its exports.
func main() {}

// Reconciler reconciles GoResource objects into Deployments.
type Reconciler struct{}

func (Reconciler) Metadata() sdk.Metadata {
	return sdk.Metadata{Name: PluginName, Reconciles: GoResource, Owns: []sdk.GroupVersionKind{Deployment}}
}

func (Reconciler) Reconcile(ctx *sdk.Context, req *sdk.Request) (sdk.Response, error) {
	name := req.Name()
	generation := req.Generation()
	if req.IsBeingDeleted() {
		// The Deployment carries an owner reference: garbage collection removes it.
		ctx.Log.Debugf("being deleted; nothing to do")
		return sdk.Response{}, nil
	}

	spec, problem := ParseSpec(req.Object)
	if problem != "" {
		// A change to the Deployment requeues this object too: say it once per spec.
		if !alreadyReported(req, generation, problem) {
			if err := ctx.Recorder.Event(sdk.Warning, "InvalidSpec", problem); err != nil {
				ctx.Log.Warnf("could not record InvalidSpec: %v", err)
			}
			if _, err := ctx.Client.PatchStatus(map[string]any{"observedGeneration": generation, "invalidSpec": problem}); err != nil {
				return sdk.Response{}, fmt.Errorf("patch status: %w", err)
			}
		}
		return sdk.Response{}, sdk.Terminal("invalid spec: %s", problem)
	}

	current, err := ctx.Client.Get(Deployment, name)
	if err != nil {
		return sdk.Response{}, fmt.Errorf("get deployment %s: %w", name, err)
	}
	deployment := current
	if current == nil {
		if deployment, err = apply(ctx, name, spec); err != nil {
			return sdk.Response{}, err
		}
		ctx.Recorder.Eventf(sdk.Normal, "Created", "Created deployment %s", name)
		ctx.Log.Infof("created deployment %s", name)
	} else if differences := Changes(current, spec); len(differences) == 0 {
		ctx.Log.Debugf("deployment %s is up to date", name)
	} else {
		if deployment, err = apply(ctx, name, spec); err != nil {
			return sdk.Response{}, err
		}
		summary := strings.Join(differences, ", ")
		ctx.Recorder.Eventf(sdk.Normal, "Updated", "Updated deployment %s: %s", name, summary)
		ctx.Log.Infof("updated deployment %s: %s", name, summary)
	}

	ready := sdk.Field(deployment, "status", "readyReplicas")
	if ready == nil {
		ready = 0
	}
	_, err = ctx.Client.PatchStatus(map[string]any{
		"observedGeneration": generation,
		"deployment":         name,
		"image":              spec.Image,
		"replicas":           spec.Replicas,
		"readyReplicas":      ready,
		// nil removes a message left by an earlier invalid spec (JSON merge patch).
		"invalidSpec": nil,
	})
	if err != nil {
		return sdk.Response{}, fmt.Errorf("patch status: %w", err)
	}
	return sdk.Response{}, nil
}

// Spec is what a GoResource asks for, once checked.
type Spec struct {
	// Image is the container image; not empty.
	Image string
	// Replicas is how many replicas; not negative, fits in an int32.
	Replicas int32
}

// ParseSpec reads and checks the spec of a GoResource. problem names every problem found,
// e.g. "spec.image is empty; spec.replicas must not be negative, got -1"; empty if none.
func ParseSpec(object map[string]any) (spec Spec, problem string) {
	raw, present := object["spec"]
	if !present || raw == nil {
		return Spec{}, "spec is missing"
	}
	fields, _ := raw.(map[string]any)
	var problems []string

	switch image := fields["image"].(type) {
	case nil:
		problems = append(problems, "spec.image is missing")
	case string:
		if strings.TrimSpace(image) == "" {
			problems = append(problems, "spec.image is empty")
		}
		spec.Image = image
	default:
		problems = append(problems, "spec.image must be a string, got "+compact(image))
	}

	switch replicas := fields["replicas"].(type) {
	case nil:
		problems = append(problems, "spec.replicas is missing")
	case json.Number:
		text := replicas.String()
		n, err := replicas.Int64()
		switch {
		case strings.ContainsAny(text, ".eE"):
			problems = append(problems, "spec.replicas must be an integer, got "+text)
		case strings.HasPrefix(text, "-"):
			problems = append(problems, "spec.replicas must not be negative, got "+text)
		case err != nil || n > 1<<31-1:
			problems = append(problems, "spec.replicas must fit in an int32, got "+text)
		default:
			spec.Replicas = int32(n)
		}
	default:
		problems = append(problems, "spec.replicas must be an integer, got "+compact(replicas))
	}

	return spec, strings.Join(problems, "; ")
}

// alreadyReported says whether the status already reports problem for this generation.
func alreadyReported(req *sdk.Request, generation int64, problem string) bool {
	observed, _ := sdk.Field(req.Object, "status", "observedGeneration").(json.Number)
	reported, _ := sdk.Field(req.Object, "status", "invalidSpec").(string)
	return observed != "" && observed.String() == fmt.Sprint(generation) && reported == problem
}

// Labels are the labels of the Deployment and its pods.
func Labels(name string) map[string]any {
	return map[string]any{"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": PluginName}
}

// DesiredDeployment is the Deployment a GoResource called name should have. The host adds
// the namespace and the controller owner reference when it applies it.
func DesiredDeployment(name string, spec Spec) map[string]any {
	return map[string]any{
		"apiVersion": Deployment.APIVersion(),
		"kind":       Deployment.Kind,
		"metadata":   map[string]any{"name": name, "labels": Labels(name)},
		"spec": map[string]any{
			"replicas": spec.Replicas,
			"selector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": Labels(name)},
				"spec": map[string]any{
					"containers": []any{map[string]any{"name": Container, "image": spec.Image}},
				},
			},
		},
	}
}

func apply(ctx *sdk.Context, name string, spec Spec) (map[string]any, error) {
	deployment, err := ctx.Client.Apply(DesiredDeployment(name, spec))
	if err != nil {
		return nil, fmt.Errorf("apply deployment %s: %w", name, err)
	}
	return deployment, nil
}

// Changes lists what differs between the Deployment and the spec, as "image a -> b" and
// "replicas 1 -> 2"; empty when nothing does.
func Changes(current map[string]any, spec Spec) []string {
	var differences []string
	image := "<none>"
	containers, _ := sdk.Field(current, "spec", "template", "spec", "containers").([]any)
	for _, c := range containers {
		if container, ok := c.(map[string]any); ok && container["name"] == Container {
			if s, ok := container["image"].(string); ok {
				image = s
			}
			break
		}
	}
	if image != spec.Image {
		differences = append(differences, fmt.Sprintf("image %s -> %s", image, spec.Image))
	}
	replicas := "<unset>"
	if n, ok := sdk.Field(current, "spec", "replicas").(json.Number); ok {
		replicas = n.String()
	}
	if replicas != fmt.Sprint(spec.Replicas) {
		differences = append(differences, fmt.Sprintf("replicas %s -> %d", replicas, spec.Replicas))
	}
	return differences
}

// compact is a value as compact JSON, as the Rust example prints it.
func compact(value any) string {
	b, _ := json.Marshal(value)
	return string(b)
}
