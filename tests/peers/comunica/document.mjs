// Runs SPARQL SELECT queries with Comunica over RDF documents fetched by URL, as a linked-data
// client does: Comunica negotiates the format (it prefers N-Quads) and queries the default graph.
//   node document.mjs '[[["URL", ...], "SELECT ..."], ...]'
// One line, a list with one result per query: bindings as [{var: {type, value}}...].
// One process for several queries: loading Comunica takes seconds.
import { QueryEngine } from "@comunica/query-sparql";

const [queries] = process.argv.slice(2);
const engine = new QueryEngine();
const term = (t) => ({ type: t.termType, value: t.value });

const results = [];
for (const [urls, query] of JSON.parse(queries)) {
  await engine.invalidateHttpCache();
  const rows = await (await engine.queryBindings(query, { sources: urls, lenient: false })).toArray();
  results.push(rows.map((b) => Object.fromEntries([...b].map(([v, t]) => [v.value, term(t)]))));
}
process.stdout.write(JSON.stringify(results) + "\n");
