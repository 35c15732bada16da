// @cairn/client/connect: the generated Connect-ES clients of every
// service (typed messages, binary or JSON, Connect or gRPC-Web), over a
// Cairn client's URL, project, session and fetch. This entry point carries
// the protobuf runtime; the default one does not.
import type { DescService } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import type { Cairn } from "./client.js";
import { CairnError, codeNames, violationsOf } from "./errors.js";

export interface TransportOptions {
  /** Send protobuf's binary format instead of JSON (Connect protocol). */
  binary?: boolean;
  /** Speak gRPC-Web instead of the Connect protocol (always binary). */
  grpcWeb?: boolean;
  /** More interceptors, run after the client's own. */
  interceptors?: Interceptor[];
}

/** A ConnectError (or anything a Connect-ES call threw) as a CairnError. */
export function toCairnError(err: unknown): CairnError {
  if (err instanceof CairnError) return err;
  const ce = ConnectError.from(err);
  if (ce.cause instanceof CairnError) return ce.cause; // the transport's own (a server that cannot be reached)
  const details = ce.details.flatMap((d) => ("type" in d && d.value instanceof Uint8Array ? [{ type: d.type, value: d.value }] : []));
  return new CairnError(codeNames[ce.code - 1] ?? "unknown", ce.rawMessage, { violations: violationsOf(details, ce.rawMessage), cause: err });
}

/**
 * A Connect-ES transport for cairn: its URL and fetch (cookies included for
 * a cookie store), `Cairn-Project`, the bearer session; a session the server
 * refuses is cleared from the store.
 */
export function createTransport(cairn: Cairn, opts: TransportOptions = {}): Transport {
  const own: Interceptor = (next) => async (req) => {
    if (cairn.project && !req.header.has("Cairn-Project")) req.header.set("Cairn-Project", cairn.project);
    const token = cairn.credential();
    if (token && !req.header.has("Authorization")) req.header.set("Authorization", "Bearer " + token);
    try {
      return await next(req);
    } catch (e) {
      // fetch's TypeError: no answer (server down, DNS, CORS). Said as the facade says it.
      if (e instanceof TypeError) throw CairnError.network(e, cairn.url);
      cairn.refused(toCairnError(e), token);
      throw e;
    }
  };
  const base = { baseUrl: cairn.url, fetch: cairn.fetch, interceptors: [own, ...(opts.interceptors ?? [])] };
  return opts.grpcWeb ? createGrpcWebTransport(base) : createConnectTransport({ ...base, useBinaryFormat: opts.binary ?? false });
}

/**
 * The generated client of a service over cairn's session: every method,
 * protobuf-es messages (`bigint`, enum numbers), errors as CairnError.
 * `connectClient(cairn, TeamsService)`.
 */
export function connectClient<S extends DescService>(cairn: Cairn, service: S, opts: TransportOptions | Transport = {}): Client<S> {
  const transport = "unary" in opts ? opts : createTransport(cairn, opts);
  const client = createClient(service, transport) as unknown as Record<string, (...a: unknown[]) => unknown>;
  const out: Record<string, unknown> = {};
  for (const m of service.methods) {
    const fn = client[m.localName]!;
    if (m.methodKind === "unary") {
      out[m.localName] = (...a: unknown[]) => (fn(...a) as Promise<unknown>).catch((e: unknown) => Promise.reject(toCairnError(e)));
    } else if (m.methodKind === "server_streaming") {
      out[m.localName] = async function* (...a: unknown[]) {
        try {
          yield* fn(...a) as AsyncIterable<unknown>;
        } catch (e) {
          throw toCairnError(e);
        }
      };
    } else {
      out[m.localName] = fn;
    }
  }
  return out as Client<S>;
}

export { AccountService } from "./gen/cairn/v1/account_pb.js";
export { DatabasesService } from "./gen/cairn/v1/databases_pb.js";
export { EventsService } from "./gen/cairn/v1/events_pb.js";
export { FunctionsService } from "./gen/cairn/v1/functions_pb.js";
export { KeysService } from "./gen/cairn/v1/keys_pb.js";
export { OperatorsService } from "./gen/cairn/v1/operators_pb.js";
export { PasskeyService } from "./gen/cairn/v1/passkeys_pb.js";
export { ProjectsService } from "./gen/cairn/v1/projects_pb.js";
export { RealtimeService } from "./gen/cairn/v1/realtime_pb.js";
export { SitesService } from "./gen/cairn/v1/sites_pb.js";
export { StorageService } from "./gen/cairn/v1/storage_pb.js";
export { TeamsService } from "./gen/cairn/v1/teams_pb.js";
export { UsersService } from "./gen/cairn/v1/users_pb.js";
export { WebhooksService } from "./gen/cairn/v1/webhooks_pb.js";
