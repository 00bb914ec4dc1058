module wasm-reconciler.dev/plugins/myresource-go

go 1.24

require wasm-reconciler.dev/sdk v0.0.0

replace wasm-reconciler.dev/sdk => ../../guest-sdk/go
