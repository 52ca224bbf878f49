/**
 * The HTTP endpoints of `plugctl run`: /healthz (the process serves), /readyz (the first full sync
 * has completed), /metrics (Prometheus text), and the routes the caller adds (POST /reconcile).
 * Bound to a loopback address by default.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

// Not `import { createServer } from 'node:http'`: importing a built-in as an ES module snapshots all
// of its exports, and reading http's lazy WebSocket/CloseEvent/MessageEvent exports loads Node's
// bundled undici, for nothing (+13 MB resident in a bare process, ~1.5 MB in an idle controller).
// getBuiltinModule returns the CommonJS exports object without reading them.
const { createServer } = process.getBuiltinModule('node:http');

/** What the endpoints report. */
export interface HealthSource {
  ready(): boolean;
  registry: Registry;
  /**
   * More endpoints, by `METHOD /path` (e.g. `POST /reconcile`): each handler answers its request
   * itself, and checks whatever authentication it needs.
   */
  routes?: Readonly<Record<string, (request: IncomingMessage, response: ServerResponse) => void>>;
}

/** A started endpoint server. */
export interface HealthServer {
  /** `host:port` actually bound (port 0 picks a free one) */
  address: string;
  close(): Promise<void>;
}

/** Listens on `host:port` and serves the three endpoints. */
export async function startHealthServer(listen: string, source: HealthSource): Promise<HealthServer> {
  const { host, port } = parseListen(listen);
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const route = source.routes?.[`${request.method ?? 'GET'} ${path}`];
    if (route !== undefined) {
      route(request, response);
    } else if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ready = source.ready();
      response
        .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
        .end(ready ? 'ok\n' : 'not synced yet\n');
    } else if (path === '/metrics') {
      source.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': source.registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500).end(String(error)),
      );
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  return {
    address: `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Parses `host:port` or `[v6]:port`. */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (match === null) throw new Error(`--listen ${listen}: expected host:port, e.g. 127.0.0.1:9365`);
  return { host: match[1] ?? match[2]!, port: Number(match[3]) };
}
