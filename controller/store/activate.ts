/**
 * The health probe both stores use: `POST /Plugin.Activate` on a plugin's unix socket, the call the
 * engine itself makes when it starts a plugin. A plugin that accepts the connection but never
 * answers (wedged) is told apart from one that is gone (no socket) by the error's wording.
 */
import { request } from 'node:http';
import { PlugctlError } from '../errors.ts';

/** The media type of Docker's plugin protocol, as the engine sends it. */
const PLUGIN_MEDIA_TYPE = 'application/vnd.docker.plugins.v1.2+json';
/** An answer is a short JSON object; anything longer is not a plugin speaking the protocol. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * Calls Plugin.Activate on the unix socket at `socketPath` and resolves with the interfaces the
 * plugin says it implements. Rejects with PLUGIN_UNRESPONSIVE (kind waiting) when nothing answers
 * within `timeoutMs`, the socket is missing or refuses, or the answer is not a 200 with an
 * `Implements` list. One connection per call, closed after it (as the engine's client does).
 */
export function activate(socketPath: string, timeoutMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string, cause?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(
        new PlugctlError('PLUGIN_UNRESPONSIVE', `Plugin.Activate on ${socketPath}: ${why}`, {
          kind: 'waiting',
          ...(cause !== undefined ? { cause } : {}),
        }),
      );
    };
    const req = request(
      {
        socketPath,
        method: 'POST',
        path: '/Plugin.Activate',
        agent: false,
        headers: { Accept: PLUGIN_MEDIA_TYPE, 'Content-Length': '0' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) fail(`the answer is longer than ${MAX_ANSWER_BYTES} bytes`);
          else chunks.push(chunk);
        });
        res.on('error', (error) => fail(error.message, error));
        res.on('end', () => {
          if (settled) return;
          if (res.statusCode !== 200) {
            fail(`answered HTTP ${res.statusCode ?? '?'}`);
            return;
          }
          const implemented = implementsOf(Buffer.concat(chunks).toString('utf8'));
          if (implemented === undefined) {
            fail('the answer is not a JSON object with an Implements list');
            return;
          }
          settled = true;
          clearTimeout(timer);
          resolve(implemented);
        });
      },
    );
    // One deadline for connect, request and answer: a wedged plugin accepts and then says nothing.
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => fail(describeSocketError(error), error));
    req.end();
  });
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

function describeSocketError(error: NodeJS.ErrnoException): string {
  if (error.code === 'ENOENT') return 'the socket does not exist (is the plugin running?)';
  if (error.code === 'ECONNREFUSED') return 'nothing accepts connections on the socket';
  return error.message;
}
