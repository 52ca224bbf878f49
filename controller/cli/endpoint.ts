/**
 * How other plugctl commands reach a running `plugctl run`, as `flux reconcile` reaches its
 * controllers: the run process writes `<state-dir>/controller.json` (mode 0600: its PID, the address
 * of its HTTP server and a random token), and serves `POST /reconcile` to whoever presents that token.
 * Reading the file needs the same rights as changing the state directory, so the token is exactly as
 * strong as the permissions plugctl already relies on; nothing else is exposed by the endpoint.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { describeError, PlugctlError } from '../errors.ts';
import type { Controller } from '../reconcile/controller.ts';
import type { PluginStatus } from '../reconcile/status.ts';
import { writeFileAtomic } from '../runtime/atomic-file.ts';

const { request } = process.getBuiltinModule('node:http');

/** Path of the endpoint file inside a state directory. */
export function endpointPath(stateDir: string): string {
  return join(stateDir, 'controller.json');
}

/** What the endpoint file holds. */
export interface EndpointFile {
  pid: number;
  /** `host:port` of the run process's HTTP server */
  address: string;
  token: string;
}

/** One reconcile's outcome as the endpoint reports it. */
export interface ReconcileReport {
  key: string;
  result: 'done' | 'requeue' | 'failed';
  /** for failures: stalled, waiting or transient */
  kind?: string;
  error?: string;
  status?: PluginStatus;
}

/** The endpoint's answer to POST /reconcile. */
export interface ReconcileAnswer {
  /** names that matched no document or owned plugin (nothing was queued for them) */
  unknown: string[];
  results: ReconcileReport[];
}

/** The part of the controller the endpoint drives. */
export type ReconcileTarget = Pick<Controller, 'reconcileNow'>;

/** A fresh random token for the endpoint file. */
export function newToken(): string {
  return randomBytes(32).toString('hex');
}

/**
 * Writes the endpoint file for a server at `address` that accepts `token`. `remove` deletes it at
 * shutdown (only if it is still this process's: a newer run may have replaced it).
 */
export async function publishEndpoint(
  stateDir: string,
  address: string,
  token: string,
): Promise<{ remove: () => Promise<void> }> {
  const file: EndpointFile = { pid: process.pid, address, token };
  const path = endpointPath(stateDir);
  await writeFileAtomic(path, `${JSON.stringify(file)}\n`, { mode: 0o600, createDir: true });
  return {
    remove: async () => {
      const current = await readEndpoint(stateDir).catch(() => undefined);
      if (current?.token === token) await rm(path, { force: true });
    },
  };
}

/** Reads the endpoint file; throws CONTROLLER_NOT_RUNNING when there is none. */
export async function readEndpoint(stateDir: string): Promise<EndpointFile> {
  const path = endpointPath(stateDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new PlugctlError(
      'CONTROLLER_NOT_RUNNING',
      code === 'ENOENT'
        ? `no plugctl run serves the state directory ${stateDir} (${path} does not exist): start plugctl run, or converge once with plugctl apply`
        : `cannot read ${path}: ${(error as Error).message} (run as the user that runs plugctl run)`,
      { cause: error },
    );
  }
  const parsed = JSON.parse(text) as Partial<EndpointFile>;
  if (typeof parsed.address !== 'string' || typeof parsed.token !== 'string')
    throw new PlugctlError('CONTROLLER_NOT_RUNNING', `${path} is not an endpoint file plugctl wrote`);
  return { pid: Number(parsed.pid), address: parsed.address, token: parsed.token };
}

/** The POST /reconcile handler: checks the token, reconciles the names in the body, answers JSON. */
export function reconcileRoute(
  target: ReconcileTarget,
  token: string,
): (request: IncomingMessage, response: ServerResponse) => void {
  const expected = Buffer.from(`Bearer ${token}`);
  return (req, res) => {
    const given = Buffer.from(req.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('unauthorized\n');
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      // a list of names, not a document: anything bigger is not from plugctl
      if (body.length > 65_536) req.destroy();
    });
    req.on('end', () => {
      let names: string[];
      try {
        const parsed = JSON.parse(body === '' ? '{}' : body) as { names?: unknown };
        names = Array.isArray(parsed.names) ? parsed.names.map(String) : [];
      } catch {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('the body must be JSON: {"names": [...]}\n');
        return;
      }
      target.reconcileNow(names).then(
        ({ unknown, results }) => {
          const answer: ReconcileAnswer = {
            unknown,
            results: results.map((r) => ({
              key: r.key,
              result:
                r.result.type === 'failed' ? 'failed' : r.result.type === 'requeueAfter' ? 'requeue' : 'done',
              ...(r.result.type === 'failed'
                ? { kind: r.result.kind, error: describeError(r.result.error) }
                : {}),
              ...(r.status !== undefined ? { status: r.status } : {}),
            })),
          };
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
        },
        (error: unknown) =>
          res.writeHead(503, { 'content-type': 'text/plain' }).end(`${describeError(error)}\n`),
      );
    });
  };
}

/**
 * Asks the run process serving `stateDir` to reconcile `names` (all when empty) and waits for the
 * answer, at most `timeoutMs`. Throws CONTROLLER_NOT_RUNNING when it cannot be reached, and
 * WAIT_TIMEOUT when it does not answer in time.
 */
export async function requestReconcile(
  stateDir: string,
  names: readonly string[],
  timeoutMs: number,
): Promise<ReconcileAnswer> {
  const endpoint = await readEndpoint(stateDir);
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(endpoint.address);
  if (match === null) throw new PlugctlError('CONTROLLER_NOT_RUNNING', `bad address ${endpoint.address}`);
  const host = match[1] ?? match[2]!;
  // a server bound to every address is asked on loopback
  const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const payload = JSON.stringify({ names });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target,
        port: Number(match[3]),
        method: 'POST',
        path: '/reconcile',
        headers: {
          authorization: `Bearer ${endpoint.token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          clearTimeout(timer);
          if (res.statusCode === 200) resolve(JSON.parse(text) as ReconcileAnswer);
          else
            reject(
              new PlugctlError(
                'CONTROLLER_NOT_RUNNING',
                `plugctl run (pid ${endpoint.pid}) at ${endpoint.address} answered ${res.statusCode}: ${text.trim()}`,
              ),
            );
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      reject(
        new PlugctlError(
          'WAIT_TIMEOUT',
          `plugctl run (pid ${endpoint.pid}) did not finish reconciling within the timeout; it goes on: plugctl get shows its progress`,
        ),
      );
    }, timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(
        new PlugctlError(
          'CONTROLLER_NOT_RUNNING',
          `cannot reach plugctl run (pid ${endpoint.pid}) at ${endpoint.address}: ${error.message}; is it still running?`,
          { cause: error },
        ),
      );
    });
    req.end(payload);
  });
}
