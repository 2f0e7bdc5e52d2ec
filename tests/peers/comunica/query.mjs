// Runs SPARQL queries with Comunica against a SPARQL endpoint and prints the results as JSON:
//   node query.mjs ENDPOINT '[["bindings", "SELECT ..."], ["boolean", "ASK ..."], ["quads", "CONSTRUCT ..."]]'
// One line, a list with one result per query: bindings as [{var: {type, value}}...],
// a boolean, or quads as [[subject, predicate, object]...] (their values).
// One process for several queries: loading Comunica takes seconds.
import { QueryEngine } from "@comunica/query-sparql";

const [endpoint, queries] = process.argv.slice(2);
const engine = new QueryEngine();
const term = (t) => ({ type: t.termType, value: t.value });

async function run(kind, query) {
  // A fresh context each time: no cache between queries, each goes to the endpoint.
  const context = { sources: [{ type: "sparql", value: endpoint }], lenient: false };
  if (kind === "bindings") {
    const rows = await (await engine.queryBindings(query, context)).toArray();
    return rows.map((b) => Object.fromEntries([...b].map(([v, t]) => [v.value, term(t)])));
  }
  if (kind === "boolean") return engine.queryBoolean(query, context);
  if (kind === "quads") {
    const quads = await (await engine.queryQuads(query, context)).toArray();
    return quads.map((q) => [q.subject.value, q.predicate.value, q.object.value]);
  }
  throw new Error(`unknown result kind ${kind}`);
}

const results = [];
for (const [kind, query] of JSON.parse(queries)) {
  await engine.invalidateHttpCache();
  results.push(await run(kind, query));
}
process.stdout.write(JSON.stringify(results) + "\n");
