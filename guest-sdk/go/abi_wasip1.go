//go:build wasip1

// The component's exports and imports, bound by hand to the canonical ABI of the WIT world
// `reconciler` (wit/plugin.wit): no bindings generator for standard Go is available, and the
// world is small. Layouts below are those of the canonical ABI (strings as pointer + length,
// variants as a discriminant then their payload at the payload's alignment).

package sdk

import (
	"errors"
	"runtime"
	"time"
	"unsafe"
)

// ---- memory the host writes into -------------------------------------------------------

// hostAllocs keeps what cabi_realloc handed out alive until the strings in it are copied.
var hostAllocs [][]byte

// cabiRealloc is the canonical ABI's allocator: the host calls it to place strings and
// lists it passes to the plugin (the request, the results of client calls). It is called
// re-entrantly, from inside an imported function, which Go's wasmexport allows.
//
//go:wasmexport cabi_realloc
func cabiRealloc(old unsafe.Pointer, oldSize, align, newSize uint32) unsafe.Pointer {
	buf := make([]byte, max(newSize, 1)+align)
	hostAllocs = append(hostAllocs, buf)
	p := unsafe.Pointer(&buf[0])
	if pad := uintptr(p) % uintptr(align); pad != 0 {
		p = unsafe.Add(p, uintptr(align)-pad)
	}
	if old != nil && oldSize > 0 {
		copy(unsafe.Slice((*byte)(p), newSize), unsafe.Slice((*byte)(old), min(oldSize, newSize)))
	}
	return p
}

func releaseHostAllocs() { hostAllocs = nil }

// adapterArena is the memory of the WASI preview1 adapter (its state and its stack, one
// 64 KiB page each, taken once). The adapter must not get it with `memory.grow`: the Go
// runtime assumes that nobody else grows the linear memory (its sbrk hands out the pages
// above its own high-water mark, whatever memory.grow returned), so a page the adapter grew
// would later be handed out again as Go heap and the adapter's state overwritten. This
// arena lives in the module's zeroed data, below everything the Go heap uses.
var (
	adapterArena [adapterPages*adapterPage + adapterPage]byte
	adapterNext  uintptr
)

const (
	adapterPage  = 64 << 10
	adapterPages = 4
)

// cabiReallocAdapter is what the adapter allocates with (wit-component imports
// `cabi_realloc_adapter` into the adapter instead of `cabi_realloc`). The adapter first
// calls it while the Go runtime is still initialising (the runtime calls WASI from
// `_initialize`), so it must neither allocate nor grow the stack: it hands out
// 64 KiB-aligned pages of adapterArena. Running out returns 0, as a failed allocation.
//
//go:wasmexport cabi_realloc_adapter
//go:nosplit
func cabiReallocAdapter(old unsafe.Pointer, oldSize, align, newSize uint32) uint32 {
	base := uintptr(unsafe.Pointer(&adapterArena[0]))
	start := (base + adapterNext + adapterPage - 1) &^ (adapterPage - 1)
	if old != nil || oldSize != 0 || start+uintptr(newSize) > base+uintptr(len(adapterArena)) {
		return 0
	}
	adapterNext = start + uintptr(newSize) - base
	return uint32(start)
}

// guestString copies a string the host placed in memory at (ptr, n).
func guestString(ptr, n uint32) string {
	if n == 0 {
		return ""
	}
	return string(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), ptr)), n))
}

func strPtr(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

func addr(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }

// ---- exports ---------------------------------------------------------------------------

// exportKeep keeps what the last export returned alive until the host has read it.
var exportKeep []any

func noReconciler() {
	panic("wasm-reconciler sdk: no reconciler: call sdk.Export from an init function")
}

// metadata: func() -> plugin-metadata, returned through a return area of 12 words: name,
// reconciles (group, version, kind), owns (pointer, length), reads (pointer, length).
//
//go:wasmexport metadata
func exportMetadata() unsafe.Pointer {
	if exported == nil {
		noReconciler()
	}
	m := exported.Metadata()
	exportKeep = []any{m}
	area := new([12]uint32)
	putString(area[0:2], m.Name)
	putGVK(area[2:8], m.Reconciles)
	area[8], area[9] = gvkList(m.Owns)
	area[10], area[11] = gvkList(m.Reads)
	exportKeep = append(exportKeep, area)
	return unsafe.Pointer(area)
}

func putString(words []uint32, s string) {
	words[0], words[1] = addr(strPtr(s)), uint32(len(s))
}

func putGVK(words []uint32, g GroupVersionKind) {
	putString(words[0:2], g.Group)
	putString(words[2:4], g.Version)
	putString(words[4:6], g.Kind)
}

func gvkList(kinds []GroupVersionKind) (ptr, n uint32) {
	if len(kinds) == 0 {
		return 4, 0
	}
	words := make([]uint32, 6*len(kinds))
	for i, g := range kinds {
		putGVK(words[6*i:6*i+6], g)
	}
	exportKeep = append(exportKeep, words)
	return addr(unsafe.Pointer(&words[0])), uint32(len(kinds))
}

// reconcile: func(request: reconcile-request) -> result<reconcile-response, reconcile-error>.
// The request record flattens to its one string. The result goes through a return area of
// 24 bytes, aligned to 8: the result's discriminant at 0 and its payload at 8; ok is
// option<u64> (discriminant at 8, value at 16), err is the variant reconcile-error
// (discriminant at 8: 0 transient, 1 terminal; message at 12 and 16).
//
//go:wasmexport reconcile
func exportReconcile(ptr unsafe.Pointer, n uint32) unsafe.Pointer {
	raw := guestString(addr(ptr), n)
	releaseHostAllocs()
	if exported == nil {
		noReconciler()
	}
	response, err := Run(wasmHost{}, exported, raw)

	area := new([3]uint64)
	bytes := (*[24]byte)(unsafe.Pointer(area))
	if err == nil {
		if response.RequeueAfter > 0 {
			bytes[8] = 1
			area[2] = uint64((response.RequeueAfter + time.Millisecond - 1) / time.Millisecond)
		}
	} else {
		bytes[0] = 1
		var terminal *TerminalError
		if errors.As(err, &terminal) {
			bytes[8] = 1
		}
		message := err.Error()
		words := (*[6]uint32)(unsafe.Pointer(area))
		putString(words[3:5], message)
		exportKeep = []any{message}
	}
	exportKeep = append(exportKeep, area)
	return unsafe.Pointer(area)
}

// ---- imports ---------------------------------------------------------------------------

//go:wasmimport wasm-reconciler:plugin/event-recorder@0.1.0 event
func importEvent(typ uint32, reason unsafe.Pointer, reasonLen uint32, message unsafe.Pointer, messageLen uint32, ret unsafe.Pointer)

//go:wasmimport wasm-reconciler:plugin/event-recorder@0.1.0 annotated-event
func importAnnotatedEvent(annotations unsafe.Pointer, annotationsLen uint32, typ uint32, reason unsafe.Pointer, reasonLen uint32, message unsafe.Pointer, messageLen uint32, ret unsafe.Pointer)

//go:wasmimport wasm-reconciler:plugin/client@0.1.0 get
func importGet(group unsafe.Pointer, groupLen uint32, version unsafe.Pointer, versionLen uint32, kind unsafe.Pointer, kindLen uint32, name unsafe.Pointer, nameLen uint32, ret unsafe.Pointer)

//go:wasmimport wasm-reconciler:plugin/client@0.1.0 apply
func importApply(object unsafe.Pointer, objectLen uint32, ret unsafe.Pointer)

//go:wasmimport wasm-reconciler:plugin/client@0.1.0 patch-status
func importPatchStatus(status unsafe.Pointer, statusLen uint32, ret unsafe.Pointer)

//go:wasmimport wasm-reconciler:plugin/log@0.1.0 log
func importLog(level uint32, message unsafe.Pointer, messageLen uint32)

// wasmHost is the real host, through the imports.
type wasmHost struct{}

// eventResult reads result<_, event-error> from a return area of 4 words: the result's
// discriminant, the error's discriminant, its message.
func eventResult(ret *[4]uint32) error {
	defer releaseHostAllocs()
	if uint8(ret[0]) == 0 {
		return nil
	}
	kind := EventErrorKind(uint8(ret[1]))
	if kind == NoObject {
		return &EventError{Kind: NoObject}
	}
	return &EventError{Kind: kind, Message: guestString(ret[2], ret[3])}
}

func (wasmHost) Event(t EventType, reason, message string) error {
	var ret [4]uint32
	importEvent(uint32(t), strPtr(reason), uint32(len(reason)), strPtr(message), uint32(len(message)), unsafe.Pointer(&ret))
	runtime.KeepAlive(reason)
	runtime.KeepAlive(message)
	return eventResult(&ret)
}

func (wasmHost) AnnotatedEvent(annotations [][2]string, t EventType, reason, message string) error {
	// list<tuple<string, string>>: 4 words per element.
	words := make([]uint32, 4*len(annotations)+1)
	for i, kv := range annotations {
		putString(words[4*i:4*i+2], kv[0])
		putString(words[4*i+2:4*i+4], kv[1])
	}
	var ret [4]uint32
	importAnnotatedEvent(unsafe.Pointer(&words[0]), uint32(len(annotations)), uint32(t),
		strPtr(reason), uint32(len(reason)), strPtr(message), uint32(len(message)), unsafe.Pointer(&ret))
	runtime.KeepAlive(annotations)
	runtime.KeepAlive(words)
	runtime.KeepAlive(reason)
	runtime.KeepAlive(message)
	return eventResult(&ret)
}

// clientError reads a client-error whose discriminant is at words[0] (the words after it
// are its payload: a string, or for api a u16 then a string).
func clientError(words []uint32) error {
	kind := ClientErrorKind(uint8(words[0]))
	if kind == API {
		return &ClientError{Kind: API, Status: uint16(words[1]), Message: guestString(words[2], words[3])}
	}
	return &ClientError{Kind: kind, Message: guestString(words[1], words[2])}
}

// Get reads result<option<string>, client-error> from 5 words: the result's discriminant,
// then the option (discriminant, string) or the error.
func (wasmHost) Get(kind GroupVersionKind, name string) (string, bool, error) {
	var ret [5]uint32
	importGet(strPtr(kind.Group), uint32(len(kind.Group)), strPtr(kind.Version), uint32(len(kind.Version)),
		strPtr(kind.Kind), uint32(len(kind.Kind)), strPtr(name), uint32(len(name)), unsafe.Pointer(&ret))
	runtime.KeepAlive(kind)
	runtime.KeepAlive(name)
	defer releaseHostAllocs()
	if uint8(ret[0]) != 0 {
		return "", false, clientError(ret[1:])
	}
	if uint8(ret[1]) == 0 {
		return "", false, nil
	}
	return guestString(ret[2], ret[3]), true, nil
}

// stringResult reads result<string, client-error> from 5 words.
func stringResult(ret *[5]uint32) (string, error) {
	defer releaseHostAllocs()
	if uint8(ret[0]) != 0 {
		return "", clientError(ret[1:])
	}
	return guestString(ret[1], ret[2]), nil
}

func (wasmHost) Apply(object string) (string, error) {
	var ret [5]uint32
	importApply(strPtr(object), uint32(len(object)), unsafe.Pointer(&ret))
	runtime.KeepAlive(object)
	return stringResult(&ret)
}

func (wasmHost) PatchStatus(status string) (string, error) {
	var ret [5]uint32
	importPatchStatus(strPtr(status), uint32(len(status)), unsafe.Pointer(&ret))
	runtime.KeepAlive(status)
	return stringResult(&ret)
}

func (wasmHost) Log(level Level, message string) {
	importLog(uint32(level), strPtr(message), uint32(len(message)))
	runtime.KeepAlive(message)
}
