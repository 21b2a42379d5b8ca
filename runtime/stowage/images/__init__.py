"""The image variant core: one implementation of parse, guard, decode, resize and encode,
shared by the edge resizer (Lambda@Edge) and the single host's service."""
