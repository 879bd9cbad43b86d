"""Python helpers of tools/: tools.render (a stack's manifests under mocks, for the tests)."""
