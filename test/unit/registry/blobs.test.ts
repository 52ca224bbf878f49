/**
 * The verified blob stream: bytes pass through unchanged, and the stream ends only once the size
 * and digest matched; every other outcome is an error with its code. Bodies are in-memory streams
 * standing in for undici's response body (a Readable) or any async iterable.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { verifiedStream } from '../../../controller/registry/blobs.ts';
import { RegistryError } from '../../../controller/registry/errors.ts';
import type { Descriptor } from '../../../controller/registry/manifest.ts';

const source = { registry: 'registry.test', repository: 'test/blob' };

function descriptorOf(bytes: Uint8Array, size = bytes.byteLength): Descriptor {
  return {
    mediaType: 'application/octet-stream',
    digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    size,
  };
}

/** A Readable body yielding `bytes` in 64 KiB chunks, then `tail` (an error, or a normal end). */
function body(bytes: Uint8Array, tail?: Error): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset < bytes.byteLength) {
        this.push(bytes.subarray(offset, offset + 64 * 1024));
        offset += 64 * 1024;
      } else if (tail !== undefined) this.destroy(tail);
      else this.push(null);
    },
  });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function failsWith(stream: Readable, code: string): Promise<RegistryError> {
  try {
    await collect(stream);
  } catch (error) {
    assert.ok(error instanceof RegistryError, `expected a RegistryError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, /registry\.test\/test\/blob|test\/blob/);
    return error;
  }
  assert.fail(`expected ${code}`);
}

describe('verifiedStream', () => {
  const bytes = randomBytes(1024 * 1024 + 123);

  it('passes the bytes through and ends when size and digest match (Readable body)', async () => {
    const out = await collect(verifiedStream(body(bytes), descriptorOf(bytes), source));
    assert.ok(out.equals(bytes), 'the same bytes');
  });

  it('accepts any async iterable as the body', async () => {
    async function* chunks(): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, 1000);
      yield bytes.subarray(1000);
    }
    const out = await collect(verifiedStream(chunks(), descriptorOf(bytes), source));
    assert.ok(out.equals(bytes), 'the same bytes');
  });

  it('refuses content that hashes differently with DIGEST_MISMATCH, and never ends', async () => {
    const other = Buffer.from(bytes);
    other.writeUInt8(other.readUInt8(0) ^ 1, 0);
    const stream = verifiedStream(body(other), descriptorOf(bytes), source);
    let ended = false;
    stream.on('end', () => (ended = true));
    await failsWith(stream, 'DIGEST_MISMATCH');
    assert.equal(ended, false);
  });

  it('refuses more bytes than declared with SIZE_MISMATCH as soon as they arrive', async () => {
    const declared = descriptorOf(bytes.subarray(0, 100_000));
    await failsWith(verifiedStream(body(bytes), declared, source), 'SIZE_MISMATCH');
  });

  it('reports a short body as REGISTRY_BODY_TRUNCATED', async () => {
    const stream = verifiedStream(body(bytes.subarray(0, 500_000)), descriptorOf(bytes), source);
    const error = await failsWith(stream, 'REGISTRY_BODY_TRUNCATED');
    assert.match(error.message, /ended after 500000 of/);
  });

  it('reports a broken body as REGISTRY_BODY_TRUNCATED and a stalled one as REGISTRY_TIMEOUT', async () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    await failsWith(
      verifiedStream(body(bytes.subarray(0, 200_000), reset), descriptorOf(bytes), source),
      'REGISTRY_BODY_TRUNCATED',
    );
    const idle = Object.assign(new Error('body timeout'), { code: 'UND_ERR_BODY_TIMEOUT' });
    await failsWith(
      verifiedStream(body(bytes.subarray(0, 200_000), idle), descriptorOf(bytes), source),
      'REGISTRY_TIMEOUT',
    );
  });

  it('reports a body destroyed without an error as REGISTRY_BODY_TRUNCATED', async () => {
    const response = body(bytes);
    const stream = verifiedStream(response, descriptorOf(bytes), source);
    stream.once('data', () => response.destroy());
    await failsWith(stream, 'REGISTRY_BODY_TRUNCATED');
  });

  it('destroying the stream destroys the body', async () => {
    const response = body(bytes);
    const stream = verifiedStream(response, descriptorOf(bytes), source);
    stream.destroy();
    await tick();
    assert.equal(response.destroyed, true);
  });

  it('pauses the body while its reader is behind (memory stays bounded)', async () => {
    const big = randomBytes(8 * 1024 * 1024);
    let produced = 0;
    let offset = 0;
    const response = new Readable({
      read() {
        if (offset >= big.byteLength) {
          this.push(null);
          return;
        }
        const chunk = big.subarray(offset, offset + 64 * 1024);
        offset += chunk.byteLength;
        produced += chunk.byteLength;
        this.push(chunk);
      },
    });
    const stream = verifiedStream(response, descriptorOf(big), source);
    // one read starts the flow; then nobody reads
    stream.read(0);
    for (let i = 0; i < 20; i++) await tick();
    assert.ok(produced > 0, 'the body was read at all');
    assert.ok(produced < 4 * 1024 * 1024, `read ${produced} bytes ahead of a reader that reads nothing`);
    assert.ok((await collect(stream)).equals(big), 'the same bytes, all of them');
  });
});
