"""The read-only SPARQL 1.1 endpoint, without HTTP (node/routes/sparql.py speaks HTTP).

- `query`: reading a query's text before the store sees it (updates, SERVICE, FROM);
- `evaluate`: running it against the embedded store or a remote one, bounded in size;
- `isolate`: the child process an embedded query runs in, killed at its deadline;
- `endpoint`: the slots, the deadline and the shutdown around them;
- `results`: result formats; `description`: the service description.
"""
