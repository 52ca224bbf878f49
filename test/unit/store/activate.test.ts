/**
 * The Plugin.Activate probe against real unix sockets served by node:http: an answering plugin, one
 * that accepts and never answers, a missing socket, and answers that are not the protocol's.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { activate, parseAnswer } from '../../../controller/store/activate.ts';
import { PlugctlError } from '../../../controller/errors.ts';

let dir: string;
const servers: Server[] = [];

async function serve(name: string, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const path = join(dir, name);
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return path;
}

async function rejectsUnresponsive(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PlugctlError);
    assert.equal(error.code, 'PLUGIN_UNRESPONSIVE');
    assert.equal(error.kind, 'waiting');
    assert.match(error.message, pattern);
    return true;
  });
}

describe('activate', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plugctl-activate-'));
  });
  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('returns what an answering plugin implements', async () => {
    const path = await serve('ok.sock', (req, res) => {
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/Plugin.Activate');
      res.setHeader('Content-Type', 'application/vnd.docker.plugins.v1.2+json');
      res.end('{"Implements":["VolumeDriver"]}');
    });
    assert.deepEqual(await activate(path, 2000), ['VolumeDriver']);
  });

  it('fails within the timeout when the plugin accepts and never answers', async () => {
    const path = await serve('hang.sock', () => undefined);
    await rejectsUnresponsive(activate(path, 200), /no answer within 200 ms/);
  });

  it('fails when the socket is missing', async () => {
    await rejectsUnresponsive(activate(join(dir, 'absent.sock'), 2000), /does not exist/);
  });

  it('fails on answers that are not the protocol', async () => {
    const status = await serve('500.sock', (_req, res) => {
      res.statusCode = 500;
      res.end('{"Err":"boom"}');
    });
    await rejectsUnresponsive(activate(status, 2000), /HTTP 500/);
    const junk = await serve('junk.sock', (_req, res) => res.end('hello'));
    await rejectsUnresponsive(activate(junk, 2000), /Implements/);
  });
});

describe('parseAnswer', () => {
  const ok = '{"Implements":["VolumeDriver"]}';
  it('reads Content-Length and chunked answers, and waits for the rest', () => {
    const head = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${ok.length}\r\n\r\n`;
    assert.deepEqual(parseAnswer(Buffer.from(head + ok), false), { implemented: ['VolumeDriver'] });
    assert.equal(parseAnswer(Buffer.from(head + ok.slice(0, 5)), false), undefined);
    assert.deepEqual(parseAnswer(Buffer.from(head + ok.slice(0, 5)), true), {
      why: 'the answer ended early',
    });
    const chunked = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n${ok.slice(0, 5)}\r\n${(ok.length - 5).toString(16)}\r\n${ok.slice(5)}\r\n0\r\n\r\n`;
    assert.deepEqual(parseAnswer(Buffer.from(chunked), false), { implemented: ['VolumeDriver'] });
    assert.equal(parseAnswer(Buffer.from(chunked.slice(0, 60)), false), undefined);
    assert.deepEqual(parseAnswer(Buffer.from(`HTTP/1.0 200 OK\r\n\r\n${ok}`), true), {
      implemented: ['VolumeDriver'],
    });
  });

  it('refuses what is not the protocol', () => {
    assert.deepEqual(parseAnswer(Buffer.from('SSH-2.0-x\r\n\r\n'), false), { why: 'the answer is not HTTP' });
    assert.deepEqual(parseAnswer(Buffer.from('HTTP/1.1 404 Not Found\r\n\r\n'), false), {
      why: 'answered HTTP 404',
    });
    assert.deepEqual(parseAnswer(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]'), false), {
      why: 'the answer is not a JSON object with an Implements list',
    });
  });
});
