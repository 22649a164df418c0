"""One module per feature: a function takes the session and the request's params and
returns what the LSP layer (`server.py`) sends back."""
