"""Application core: one folder per feature (schemas, service, repository, routes, tasks) shared by
the API, the MCP servers and the workers, plus the contracts between them (errors, events)."""
