"""The stored third-party files under tests/ported/<folder>/ are inputs of the ported tests, not tests:
micrograd's test/test_engine.py, for one, is run by tests/test_ported_models.py after its import lines are
rewritten, and must not be collected here on its own (it imports the micrograd package)."""
collect_ignore = ["nanogpt", "mingpt", "annotated_transformer", "vit_pytorch", "micrograd"]
