"""The request pipeline: routing, one serve(), envelopes, self-check."""
