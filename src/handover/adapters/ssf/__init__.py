"""SSF adapters: signing SETs with JOSE keys and pushing them over HTTP."""
