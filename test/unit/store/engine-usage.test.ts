/**
 * EngineUsage over a scripted engine (pure logic: the listings are fixed JSON): users are matched
 * whatever spelling of the plugin's name they recorded, only the listings the plugins' interfaces
 * allow are read, listings are reused within the TTL, a container is inspected once for its life,
 * and at most maxInspects containers are inspected per lookup (the answer says it is incomplete).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EngineUsage, names } from '../../../controller/store/docker/usage.ts';
import { installed } from '../reconcile/fixtures.ts';

function engine(containers: number) {
  const calls: string[] = [];
  const json = async (_method: string, path: string): Promise<unknown> => {
    calls.push(path);
    if (path === '/volumes') {
      return {
        Volumes: [
          { Name: 'a', Driver: 'vol:latest' },
          { Name: 'b', Driver: 'docker.io/library/vol:latest' },
          { Name: 'local1', Driver: 'local' },
        ],
      };
    }
    if (path === '/networks') return [{ Name: 'n1', Driver: 'bridge', IPAM: { Driver: 'vol' } }];
    if (path === '/containers/json') {
      return Array.from({ length: containers }, (_, i) => ({ Id: `c${i}`, Names: [`/web-${i}`] }));
    }
    const id = /^\/containers\/(c\d+)\/json$/.exec(path)?.[1];
    if (id !== undefined) {
      return { HostConfig: { LogConfig: { Type: Number(id.slice(1)) % 2 === 0 ? 'logs' : 'json-file' } } };
    }
    throw new Error(`unexpected ${path}`);
  };
  return { calls, json };
}

describe('EngineUsage', () => {
  it('matches every spelling of the name, and reads only what the interfaces allow', async () => {
    const e = engine(0);
    let now = 0;
    const usage = new EngineUsage(e, { clock: { now: () => now } });
    const vol = installed();
    const found = await usage.usage([vol]);
    assert.deepEqual(found.get(vol.name), {
      volumes: ['a', 'b'],
      networks: [],
      logContainers: [],
      complete: true,
    });
    assert.deepEqual(e.calls, ['/volumes'], 'a volume driver has no network or log users');
    await usage.usage([vol]);
    assert.equal(e.calls.length, 1, 'reused within the TTL');
    now += 2500;
    await usage.usage([vol]);
    assert.equal(e.calls.length, 2, 'read again after the TTL');
    await usage.usage([vol], { fresh: true });
    assert.equal(e.calls.length, 3, 'fresh bypasses the cache');
    const ipam = installed({ name: 'vol:latest', capabilities: ['ipamdriver'] });
    assert.deepEqual((await usage.usage([ipam])).get('vol:latest')?.networks, ['n1']);
  });

  it('inspects each container once, at most maxInspects per lookup', async () => {
    const e = engine(5);
    let now = 0;
    const usage = new EngineUsage(e, { clock: { now: () => now }, maxInspects: 2 });
    const logs = installed({ name: 'logs:latest', capabilities: ['logdriver'] });
    const first = (await usage.usage([logs])).get('logs:latest');
    assert.equal(first?.complete, false);
    const inspects = () => e.calls.filter((c) => c.startsWith('/containers/c')).length;
    assert.equal(inspects(), 2);
    now += 5000;
    await usage.usage([logs]);
    now += 5000;
    const last = (await usage.usage([logs])).get('logs:latest');
    assert.equal(inspects(), 5, 'every container inspected exactly once');
    assert.deepEqual(last, {
      volumes: [],
      networks: [],
      logContainers: ['web-0', 'web-2', 'web-4'],
      complete: true,
    });
  });

  it('names a plugin by name, normalised name or ID only', () => {
    const p = installed({ name: 'vol:latest' });
    assert.ok(names(p, 'vol'));
    assert.ok(names(p, 'docker.io/library/vol:latest'));
    assert.ok(names(p, p.id));
    assert.ok(!names(p, 'vol:2'));
    assert.ok(!names(p, ''));
  });
});
