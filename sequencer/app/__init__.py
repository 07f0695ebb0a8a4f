"""The application layer: the use cases over the pure domain, with no Kafka or Faust client.

Folding records (`processor`), replay, the batch commit's numbered steps over small ports,
input offsets, monitoring and lag states as pure functions, sweeps; the wire codecs of the
event log live here because the fold of raw records decodes them. Imports `sequencer.domain`
and `sequencer.app` only (``tests/unit/test_layers.py``).
"""
