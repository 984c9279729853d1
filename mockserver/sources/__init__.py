"""Answers from elsewhere than the handlers: the validating proxy and replay."""
