"""Reusable constructs; stacks compose them."""
