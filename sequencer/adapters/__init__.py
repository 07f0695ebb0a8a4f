"""The edges: files, Kafka, Faust and HTTP. Every Kafka or Faust client import lives here.

Adapters import `sequencer.domain`, `sequencer.app` and each other, never `sequencer.cli`
or `sequencer.ui` (``tests/unit/test_layers.py``).
"""
