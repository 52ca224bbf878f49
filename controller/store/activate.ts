/**
 * The health probe both stores use: `POST /Plugin.Activate` on a plugin's unix socket, the call the
 * engine itself makes when it starts a plugin. A plugin that accepts the connection but never
 * answers (wedged) is told apart from one that is gone (no socket) by the error's wording.
 *
 * It speaks HTTP/1.1 over node:net itself instead of using node:http: measured on this project's
 * machines, a node:http request costs ~500 µs of CPU and this ~110 µs, and 200 plugins probed every
 * 10 s must stay well under 1 % of a core (bench/health-probe.ts). The exchange is one fixed
 * request and one small answer on a connection closed after it, so the parsing needed is small:
 * the status line, Content-Length or chunked framing, and the JSON body.
 */
import { connect } from 'node:net';
import { PlugctlError } from '../errors.ts';

/** An answer is a short JSON object; anything longer is not a plugin speaking the protocol. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** The request, as the engine's plugin client sends it (no body). */
const REQUEST = Buffer.from(
  'POST /Plugin.Activate HTTP/1.1\r\nHost: plugin\r\n' +
    'Accept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
);

/**
 * Calls Plugin.Activate on the unix socket at `socketPath` and resolves with the interfaces the
 * plugin says it implements. Rejects with PLUGIN_UNRESPONSIVE (kind waiting) when nothing answers
 * within `timeoutMs`, the socket is missing or refuses, or the answer is not a 200 with an
 * `Implements` list; with PLUGIN_PROBE_UNAVAILABLE when plugctl may not connect (EACCES, EPERM). One connection per call, closed after it (as the engine's client does).
 */
export function activate(socketPath: string, timeoutMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let received: Buffer = Buffer.alloc(0);
    const socket = connect(socketPath);
    const finish = (outcome: { implemented: string[] } | { why: string; cause?: unknown }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if ('implemented' in outcome) {
        resolve(outcome.implemented);
        return;
      }
      // plugctl not allowed to connect says nothing about the plugin: it cannot be checked from here
      const denied = 'cause' in outcome && isDenied(outcome.cause);
      reject(
        new PlugctlError(
          denied ? 'PLUGIN_PROBE_UNAVAILABLE' : 'PLUGIN_UNRESPONSIVE',
          `Plugin.Activate on ${socketPath}: ${outcome.why}`,
          {
            kind: 'waiting',
            ...(outcome.cause !== undefined ? { cause: outcome.cause } : {}),
          },
        ),
      );
    };
    // One deadline for connect, request and answer: a wedged plugin accepts and then says nothing.
    const timer = setTimeout(() => finish({ why: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.once('connect', () => socket.write(REQUEST));
    socket.on('data', (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (received.length > MAX_ANSWER_BYTES) {
        finish({ why: `the answer is longer than ${MAX_ANSWER_BYTES} bytes` });
        return;
      }
      const answer = parseAnswer(received, false);
      if (answer !== undefined) finish(answer);
    });
    socket.once('end', () => finish(parseAnswer(received, true) ?? { why: 'the answer ended early' }));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish({ why: describeSocketError(error), cause: error }),
    );
  });
}

/**
 * What an answer says once it is complete: the implemented interfaces, or why it is not a good
 * answer; undefined while more bytes are needed (`ended`: the peer closed, nothing more comes).
 */
export function parseAnswer(
  data: Buffer,
  ended: boolean,
): { implemented: string[] } | { why: string } | undefined {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) return ended ? { why: 'the answer is not HTTP' } : undefined;
  const head = data.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1];
  if (status === undefined) return { why: 'the answer is not HTTP' };
  if (status !== '200') return { why: `answered HTTP ${status}` };
  const header = (name: string): string | undefined =>
    head
      .slice(1)
      .find((line) => line.toLowerCase().startsWith(`${name}:`))
      ?.slice(name.length + 1)
      .trim();
  let rest = data.subarray(headEnd + 4);
  let body: Buffer | undefined;
  const length = header('content-length');
  if (header('transfer-encoding')?.toLowerCase() === 'chunked') body = dechunk(rest);
  else if (length !== undefined) {
    const want = Number.parseInt(length, 10);
    if (!Number.isSafeInteger(want) || want < 0) return { why: 'the answer has a bad Content-Length' };
    if (rest.length >= want) body = rest.subarray(0, want);
  } else if (ended) body = rest;
  if (body === undefined) return ended ? { why: 'the answer ended early' } : undefined;
  rest = body;
  const implemented = implementsOf(rest.toString('utf8'));
  return implemented === undefined
    ? { why: 'the answer is not a JSON object with an Implements list' }
    : { implemented };
}

/** The body of a complete chunked message; undefined until the last chunk has arrived. */
function dechunk(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isSafeInteger(size) || size < 0) return Buffer.alloc(0);
    if (size === 0) return Buffer.concat(parts);
    const start = lineEnd + 2;
    if (data.length < start + size + 2) return undefined;
    parts.push(data.subarray(start, start + size));
    at = start + size + 2;
  }
}

function implementsOf(text: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
    const list = (parsed as { Implements?: unknown }).Implements;
    if (!Array.isArray(list)) return undefined;
    return list.filter((item): item is string => typeof item === 'string');
  } catch {
    return undefined;
  }
}

function isDenied(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EACCES' || code === 'EPERM';
}

function describeSocketError(error: NodeJS.ErrnoException): string {
  if (isDenied(error)) return `plugctl may not connect to the socket (${error.code}): run it as root`;
  if (error.code === 'ENOENT') return 'the socket does not exist (is the plugin running?)';
  if (error.code === 'ECONNREFUSED') return 'nothing accepts connections on the socket';
  return error.message;
}
