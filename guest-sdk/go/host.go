package sdk

import (
	"encoding/json"
	"fmt"
)

// Host is what the host offers a plugin during reconcile: the WIT imports `event-recorder`,
// `client` and `log`, with objects as JSON text. In a component it is the real host; tests
// use a fake one (package testkit).
type Host interface {
	Event(t EventType, reason, message string) error
	AnnotatedEvent(annotations [][2]string, t EventType, reason, message string) error
	// Get returns the object's JSON, or found == false when it does not exist.
	Get(kind GroupVersionKind, name string) (object string, found bool, err error)
	Apply(object string) (string, error)
	PatchStatus(status string) (string, error)
	Log(level Level, message string)
}

// EventType is `Normal` for what is expected, `Warning` for what someone should look at.
type EventType uint8

const (
	Normal EventType = iota
	Warning
)

func (t EventType) String() string {
	if t == Warning {
		return "Warning"
	}
	return "Normal"
}

// EventErrorKind is why the host refused an event.
type EventErrorKind uint8

const (
	InvalidReason EventErrorKind = iota
	InvalidAnnotation
	NoObject
)

// EventError is the host's refusal of an event; nothing was sent.
type EventError struct {
	Kind    EventErrorKind
	Message string
}

func (e *EventError) Error() string {
	switch e.Kind {
	case InvalidReason:
		return "invalid event reason: " + e.Message
	case InvalidAnnotation:
		return "invalid event annotation: " + e.Message
	default:
		return "no object to record an event about"
	}
}

// ClientErrorKind is why a client call failed.
type ClientErrorKind uint8

const (
	// Forbidden: the kind (or verb) was not declared, or the object is in another namespace.
	Forbidden ClientErrorKind = iota
	// Invalid: the JSON given was not a valid object for this call.
	Invalid
	// API: the API server refused the request; Status is its HTTP status code.
	API
	// Unavailable: the API server could not be reached.
	Unavailable
)

// ClientError is a failed client call.
type ClientError struct {
	Kind    ClientErrorKind
	Status  uint16
	Message string
}

func (e *ClientError) Error() string {
	switch e.Kind {
	case Forbidden:
		return "forbidden: " + e.Message
	case Invalid:
		return "invalid: " + e.Message
	case API:
		return fmt.Sprintf("API server: %d %s", e.Status, e.Message)
	default:
		return "unavailable: " + e.Message
	}
}

// Level is a log line's level.
type Level uint8

const (
	LevelTrace Level = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
)

// Context is what Reconcile may use: the event recorder, the client and the log, all about
// (and scoped to) the object being reconciled.
type Context struct {
	host     Host
	Recorder Recorder
	Client   Client
	Log      Logger
}

// Recorder records Kubernetes Events about the reconciled object.
type Recorder struct{ host Host }

// Event records an event (`Event(object, type, reason, message)`).
func (r Recorder) Event(t EventType, reason, message string) error {
	return r.host.Event(t, reason, message)
}

// Eventf records an event with a message formatted like fmt.Sprintf.
func (r Recorder) Eventf(t EventType, reason, format string, args ...any) error {
	return r.host.Event(t, reason, fmt.Sprintf(format, args...))
}

// AnnotatedEventf records an event with annotations on the Event object.
func (r Recorder) AnnotatedEventf(annotations map[string]string, t EventType, reason, format string, args ...any) error {
	pairs := make([][2]string, 0, len(annotations))
	for k, v := range annotations {
		pairs = append(pairs, [2]string{k, v})
	}
	return r.host.AnnotatedEvent(pairs, t, reason, fmt.Sprintf(format, args...))
}

// Client reads and writes objects through the host, as JSON.
type Client struct{ host Host }

// Get reads an object of a declared kind in the reconciled object's namespace; nil, nil
// when it does not exist.
func (c Client) Get(kind GroupVersionKind, name string) (map[string]any, error) {
	raw, found, err := c.host.Get(kind, name)
	if err != nil || !found {
		return nil, err
	}
	return decodeReply(raw)
}

// Apply creates or updates an owned object by server-side apply (object is marshalled with
// encoding/json unless it is a string or []byte of JSON) and returns it as stored.
func (c Client) Apply(object any) (map[string]any, error) {
	text, err := encode(object)
	if err != nil {
		return nil, err
	}
	raw, err := c.host.Apply(text)
	if err != nil {
		return nil, err
	}
	return decodeReply(raw)
}

// PatchStatus merges status (a JSON object; nil fields remove) into the reconciled object's
// status and returns the object as stored.
func (c Client) PatchStatus(status any) (map[string]any, error) {
	text, err := encode(status)
	if err != nil {
		return nil, err
	}
	raw, err := c.host.PatchStatus(text)
	if err != nil {
		return nil, err
	}
	return decodeReply(raw)
}

func encode(value any) (string, error) {
	switch v := value.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	b, err := json.Marshal(value)
	return string(b), err
}

func decodeReply(raw string) (map[string]any, error) {
	object, err := decode(raw)
	if err != nil {
		return nil, fmt.Errorf("the host returned an object that is not JSON: %w", err)
	}
	return object, nil
}

// Logger writes structured log lines into the host's log, in the reconcile's span.
type Logger struct{ host Host }

func (l Logger) logf(level Level, format string, args []any) {
	l.host.Log(level, fmt.Sprintf(format, args...))
}

func (l Logger) Tracef(format string, args ...any) { l.logf(LevelTrace, format, args) }
func (l Logger) Debugf(format string, args ...any) { l.logf(LevelDebug, format, args) }
func (l Logger) Infof(format string, args ...any)  { l.logf(LevelInfo, format, args) }
func (l Logger) Warnf(format string, args ...any)  { l.logf(LevelWarn, format, args) }
func (l Logger) Errorf(format string, args ...any) { l.logf(LevelError, format, args) }
