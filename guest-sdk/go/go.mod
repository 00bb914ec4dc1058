module wasm-reconciler.dev/sdk

go 1.24
