"""Sequencer: an event-sourced stream processor for the trading desk's daily sequencer."""
