/**
 * The planner with what the registry says: privileges computed from random configs are never sent
 * unless declared, tags that moved, digest pins installed by tag, and rollback data on upgrades.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { plan, type Action } from '../../../controller/reconcile/plan.ts';
import { privilegesEqual } from '../../../controller/plugin/privileges.ts';
import { parsePluginConfig } from '../../../controller/plugin/config.ts';
import { computePrivileges } from '../../../controller/plugin/privileges.ts';
import type { PluginPrivilege } from '../../../controller/api/types.ts';
import {
  desired,
  installed,
  inventory,
  NAME,
  opts,
  privs,
  REMOTE,
  REMOTE_V2,
  remoteInfo as bareInfo,
} from './fixtures.ts';

/** What the registry says, with the privileges the default document grants. */
const remoteInfo: typeof bareInfo = (remote, overrides = {}) =>
  bareInfo(remote, { privileges: privs(), ...overrides });

const SOURCE = 'docker.io/acme/vol';
const path = fc.stringMatching(/^\/[a-z]{1,6}(\/[a-z]{1,6})?$/);

/** Random plugin configs covering every rule that yields a privilege. */
const configArb = fc
  .record({
    network: fc.constantFrom('', 'null', 'bridge', 'host', 'none', 'custom'),
    ipc: fc.boolean(),
    pid: fc.boolean(),
    mounts: fc.array(fc.option(path, { nil: undefined }), { maxLength: 3 }),
    devices: fc.array(fc.option(path, { nil: undefined }), { maxLength: 3 }),
    allowAll: fc.boolean(),
    caps: fc.uniqueArray(fc.constantFrom('CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_MKNOD'), { maxLength: 3 }),
  })
  .map((c) =>
    parsePluginConfig(
      {
        Network: { Type: c.network },
        IpcHost: c.ipc,
        PidHost: c.pid,
        Mounts: c.mounts.map((source, i) => ({
          Name: `m${i}`,
          Destination: `/m${i}`,
          ...(source ? { Source: source } : {}),
        })),
        Linux: {
          AllowAllDevices: c.allowAll,
          Capabilities: c.caps,
          Devices: c.devices.map((p, i) => ({ Name: `d${i}`, ...(p ? { Path: p } : {}) })),
        },
      },
      SOURCE,
    ),
  );

/** Grants derived from the required list by a random edit (or none), in a random order. */
function grantsArb(required: PluginPrivilege[]): fc.Arbitrary<PluginPrivilege[]> {
  const edits = fc.oneof(
    fc.constant((r: PluginPrivilege[]) => r),
    fc.nat().map((i) => (r: PluginPrivilege[]) => r.filter((_, j) => r.length === 0 || j !== i % r.length)),
    fc
      .nat()
      .map(
        (i) => (r: PluginPrivilege[]) =>
          r.map((p, j) => (j === i % Math.max(1, r.length) ? { ...p, value: [...p.value, '/extra'] } : p)),
      ),
    fc.constant((r: PluginPrivilege[]) => [...r, { name: 'network', value: ['host'] }]),
    fc.constant(() => [] as PluginPrivilege[]),
  );
  return fc.tuple(edits, fc.nat()).map(([edit, seed]) => {
    const edited = edit(required.map((p) => ({ ...p, value: [...p.value] })));
    return edited
      .map((p, i) => ({ p, k: (i * 7919 + seed) % 104729 }))
      .sort((a, b) => a.k - b.k)
      .map((x) => x.p);
  });
}

test('property: nothing is ever pulled or upgraded with a privilege that was not declared', () => {
  fc.assert(
    fc.property(
      configArb.chain((config) =>
        fc.tuple(fc.constant(computePrivileges(config)), grantsArb(computePrivileges(config))),
      ),
      fc.boolean(),
      ([required, grants], upgrade) => {
        const d = desired({ remote: REMOTE_V2, privileges: grants });
        const actual = upgrade ? [installed()] : [];
        const facts = { remotes: new Map([[REMOTE_V2, remoteInfo(REMOTE_V2, { privileges: required })]]) };
        const [p] = plan([d], actual, inventory([NAME]), facts, opts());
        const sends = p!.actions.filter(
          (a): a is Extract<Action, { type: 'pull' | 'upgrade' }> =>
            a.type === 'pull' || a.type === 'upgrade',
        );
        if (!privilegesEqual(grants, required)) {
          assert.equal(sends.length, 0, 'a mismatch sends nothing');
          assert.equal(p!.outcome, 'blocked');
        }
        for (const send of sends)
          assert.ok(privilegesEqual(send.privileges, grants), 'only what was declared');
      },
    ),
    { numRuns: 1000 },
  );
});

test('TrackTag: the same tag with other layers plans an upgrade with rollback data', () => {
  const d = desired({ upgradePolicy: 'TrackTag' });
  const moved = remoteInfo(REMOTE, {
    diffIds: ['sha256:' + 'c'.repeat(64)],
    digest: 'sha256:' + 'e'.repeat(64),
  });
  const [p] = plan([d], [installed()], inventory([NAME]), { remotes: new Map([[REMOTE, moved]]) }, opts());
  assert.deepEqual(
    p!.actions.map((a) => a.type),
    ['disable', 'upgrade', 'set', 'enable'],
  );
  const upgrade = p!.actions[1] as Extract<Action, { type: 'upgrade' }>;
  assert.match(upgrade.reason, /the tag moved/);
  assert.equal(upgrade.digest, moved.digest);
  assert.equal(upgrade.rollback?.remote, REMOTE);
  assert.ok(
    upgrade.rollback?.settings.includes('GREETING=hello'),
    'the old settings are restored on rollback',
  );
});

test('TrackTag: same layers, or a registry that cannot be reached, leaves a working plugin alone', () => {
  const d = desired({ upgradePolicy: 'TrackTag' });
  const [same] = plan(
    [d],
    [installed()],
    inventory([NAME]),
    {
      remotes: new Map([[REMOTE, remoteInfo(REMOTE)]]),
    },
    opts(),
  );
  assert.equal(same!.outcome, 'unchanged');
  const [down] = plan(
    [d],
    [installed()],
    inventory([NAME]),
    {
      remotes: new Map([[REMOTE, new Error('registry unreachable')]]),
    },
    opts(),
  );
  assert.equal(down!.outcome, 'unchanged');
  assert.match(down!.actions[0]!.reason, /could not check the remote for new content: registry unreachable/);
});

test('OnSpecChange ignores moved layers: only a changed document upgrades', () => {
  const moved = remoteInfo(REMOTE, { diffIds: ['sha256:' + 'c'.repeat(64)] });
  const [p] = plan(
    [desired()],
    [installed()],
    inventory([NAME]),
    { remotes: new Map([[REMOTE, moved]]) },
    opts(),
  );
  assert.equal(p!.outcome, 'unchanged');
});

test('a pin on an old engine: pulled by tag, verified, and matched by its tag afterwards', () => {
  const pin = `${REMOTE}@sha256:${'f'.repeat(64)}`;
  const info = remoteInfo(pin, { pullRemote: REMOTE });
  const [fresh] = plan(
    [desired({ remote: pin })],
    [],
    inventory([]),
    { remotes: new Map([[pin, info]]) },
    opts(),
  );
  assert.deepEqual(
    fresh!.actions.map((a) => a.type),
    ['pull', 'verify', 'enable'],
  );
  assert.equal(
    (fresh!.actions[0] as Extract<Action, { type: 'pull' }>).remote,
    REMOTE,
    'the engine gets the tag',
  );

  const [kept] = plan(
    [desired({ remote: pin })],
    [installed()],
    inventory([NAME]),
    {
      remotes: new Map([[pin, info]]),
    },
    opts(),
  );
  assert.equal(kept!.outcome, 'unchanged', 'installed from the tag with the pinned layers: converged');

  const other = remoteInfo(pin, { pullRemote: REMOTE, diffIds: ['sha256:' + '9'.repeat(64)] });
  const [stale] = plan(
    [desired({ remote: pin })],
    [installed()],
    inventory([NAME]),
    {
      remotes: new Map([[pin, other]]),
    },
    opts(),
  );
  assert.ok(stale!.actions.some((a) => a.type === 'upgrade'));
  assert.match(stale!.actions.find((a) => a.type === 'upgrade')!.reason, /not the pinned/);
});

test('a multi-platform remote on a new engine is installed by its platform digest', () => {
  const byDigest = `docker.io/acme/vol@sha256:${'a'.repeat(64)}`;
  const info = remoteInfo(REMOTE, { pullRemote: byDigest });
  const [p] = plan([desired()], [], inventory([]), { remotes: new Map([[REMOTE, info]]) }, opts());
  assert.equal((p!.actions[0] as Extract<Action, { type: 'pull' }>).remote, byDigest);
  const [after] = plan(
    [desired()],
    [installed({ reference: byDigest })],
    inventory([NAME]),
    {
      remotes: new Map([[REMOTE, info]]),
    },
    opts(),
  );
  assert.equal(
    after!.outcome,
    'unchanged',
    'installed by digest counts as installed from the declared remote',
  );
});

test('dependsOn: installed and configured before its dependencies are Ready, enabled only after', () => {
  const d = desired({ dependsOn: ['base'], settings: { env: { DEBUG: '1' } } });
  const remotes = new Map([[REMOTE, remoteInfo(REMOTE)]]);
  const [waiting] = plan([d], [], inventory([]), { remotes, ready: new Set() }, opts());
  assert.deepEqual(
    waiting!.actions.map((a) => a.type),
    ['pull', 'set', 'blocked'],
  );
  const last = waiting!.actions.at(-1) as Extract<Action, { type: 'blocked' }>;
  assert.equal(last.code, 'DEPENDENCY_NOT_READY');
  assert.equal(last.kind, 'waiting');
  assert.match(last.reason, /waiting for base to be Ready/);

  const [ready] = plan([d], [], inventory([]), { remotes, ready: new Set(['base']) }, opts());
  assert.equal(ready!.actions.at(-1)!.type, 'enable');

  const [disabled] = plan(
    [d],
    [installed({ enabled: false, settings: { env: { GREETING: 'hello', DEBUG: '1' } } })],
    inventory([NAME]),
    {
      remotes,
      ready: new Set(),
    },
    opts(),
  );
  assert.equal(disabled!.outcome, 'blocked', 'only the enable was left, and it waits');
  const [running] = plan(
    [d],
    [installed({ settings: { env: { GREETING: 'hello', DEBUG: '1' } } })],
    inventory([NAME]),
    {
      remotes,
      ready: new Set(),
    },
    opts(),
  );
  assert.equal(running!.outcome, 'unchanged', 'an enabled plugin is never disabled because of a dependency');
});
