"""Use cases written once, returning typed views that the routes and the CLI both render
(the local CLI over the stores, the remote CLI over HTTP from the same views)."""
