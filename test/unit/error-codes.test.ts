// The error catalogue is the one list of codes: a PlugctlError's kind defaults to its code's kind there,
// the controller's sticky stalls are read from it, and every entry is a code plugctl really raises.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, isStickyStall, type ErrorCode } from '../../controller/error-codes.ts';
import { EngineError, PlugctlError, SpecError } from '../../controller/errors.ts';
import { RegistryError } from '../../controller/registry/errors.ts';
import { EmbeddedStoreError, LayerError } from '../../controller/store/embedded/errors.ts';
import { codeForStatus } from '../../controller/store/docker/client.ts';

const CODES = Object.keys(ERROR_CODES) as ErrorCode[];
const CONTROLLER = fileURLToPath(new URL('../../controller/', import.meta.url));

test('a PlugctlError has its code’s kind unless the throw site says otherwise', () => {
  assert.equal(new PlugctlError('PLUGIN_VANISHED', 'gone').kind, 'transient');
  assert.equal(new PlugctlError('STATE_CORRUPT', 'bad').kind, 'stalled');
  assert.equal(new EngineError('CONFLICT', 'busy').kind, 'waiting');
  assert.equal(new RegistryError('REGISTRY_TOKEN_FAILED', 'no token', { registry: 'r' }).kind, 'stalled');
  assert.equal(new RegistryError('REGISTRY_TIMEOUT', 'slow', { registry: 'r' }).kind, 'transient');
  assert.equal(new EmbeddedStoreError('PLUGIN_ENABLED', 'enabled').kind, 'waiting');
  assert.equal(new LayerError('GZIP_BOMB', 'too big').kind, 'stalled');
  // the documented overrides
  assert.equal(new EmbeddedStoreError('ENABLE_FAILED', 'bad config', { kind: 'stalled' }).kind, 'stalled');
  assert.equal(new EngineError('PULL_FAILED', 'denied', { kind: 'stalled' }).kind, 'stalled');
  // a SpecError is always stalled
  assert.equal(new SpecError('INVALID_REFERENCE', 'bad').kind, 'stalled');
});

test('every catalogued code keeps its kind when raised without one', () => {
  for (const code of CODES) assert.equal(new PlugctlError(code, 'x').kind, ERROR_CODES[code].kind, code);
});

test('the engine’s HTTP statuses map to catalogued codes with their kinds', () => {
  assert.deepEqual(codeForStatus(404), { code: 'NOT_FOUND', kind: 'stalled' });
  assert.deepEqual(codeForStatus(409), { code: 'CONFLICT', kind: 'waiting' });
  assert.deepEqual(codeForStatus(502), { code: 'ENGINE_ERROR', kind: 'transient' });
  assert.deepEqual(codeForStatus(418), { code: 'ENGINE_UNEXPECTED_STATUS', kind: 'stalled' });
});

test('sticky stalls are the catalogue’s sticky codes, and only stalled ones', () => {
  const sticky = CODES.filter(isStickyStall);
  assert.deepEqual(sticky.sort(), ['PIN_CONTENT_MISMATCH', 'ROLLBACK_FAILED', 'UPGRADE_ROLLED_BACK']);
  for (const code of sticky) assert.equal(ERROR_CODES[code].kind, 'stalled');
  // status.json may hold codes of another version of plugctl
  assert.equal(isStickyStall('NO_SUCH_CODE'), false);
  assert.equal(isStickyStall('toString'), false);
  assert.equal(isStickyStall('NAME_CONFLICT'), false);
});

test('every code is upper snake case with a one-line hint that says what to do', () => {
  for (const code of CODES) {
    const entry = ERROR_CODES[code];
    assert.match(code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
    assert.match(entry.hint, /^\S.*[.)]$/, `${code}: one line, ending like a sentence`);
    assert.ok(!entry.hint.includes('\n'), code);
    assert.ok(entry.hint.length <= 220, `${code}: the hint is one line, not a paragraph`);
  }
});

test('every catalogued code is raised or recorded somewhere in controller/', async () => {
  const sources: string[] = [];
  for (const entry of await readdir(CONTROLLER, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name === 'error-codes.ts') continue;
    sources.push(await readFile(join(entry.parentPath, entry.name), 'utf8'));
  }
  const all = sources.join('\n');
  const unused = CODES.filter((code) => !all.includes(`'${code}'`));
  assert.deepEqual(unused, [], 'catalogued but never used: remove them from error-codes.ts');
});
