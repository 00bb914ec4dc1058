"""pytest configuration for the SDK's tests: this directory (holding ``wasm_reconciler_sdk``)
is put on ``sys.path`` by pytest, since it is not a package itself."""
