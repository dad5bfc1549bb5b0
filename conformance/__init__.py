"""A runtime-spec conformance suite that drives any OCI runtime through its command line.

Every case names the spec section and the MUST/SHOULD it checks; see conformance/README.md.
Stdlib only, so it runs with any python3 >= 3.9.
"""
