/**
 * The planner for plugins built from a context (spec.build): created when absent, rebuilt when the
 * context's digest differs from the one recorded at the last build, left alone when it is the same,
 * and never created with privileges the document does not grant.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plan, type Action, type RemoteFacts } from '../../../controller/reconcile/plan.ts';
import { PlugctlError } from '../../../controller/errors.ts';
import type { ContextInfo } from '../../../controller/store/context.ts';
import { desired, installed, inventory, NAME, opts, privs } from './fixtures.ts';

const CONTEXT = '/repo/plugins/vol';
const DIGEST = 'sha256:' + '1'.repeat(64);
const CHANGED = 'sha256:' + '2'.repeat(64);

function built(overrides: Parameters<typeof desired>[0] = {}): ReturnType<typeof desired> {
  return desired({ remote: 'docker.io/library/vol:latest', build: { context: CONTEXT }, ...overrides });
}

function contextFacts(info: Partial<ContextInfo> | Error = {}): RemoteFacts {
  const value: ContextInfo | Error =
    info instanceof Error
      ? info
      : {
          context: CONTEXT,
          digest: DIGEST,
          privileges: privs(),
          config: {} as ContextInfo['config'],
          ...info,
        };
  return { remotes: new Map(), builds: new Map([[CONTEXT, value]]) };
}

function types(actions: readonly Action[]): string[] {
  return actions.map((a) => a.type);
}

test('absent: built, configured and enabled, and the context digest travels with the build', () => {
  const [p] = plan([built({ settings: { env: { DEBUG: '1' } } })], [], inventory(), contextFacts(), opts());
  assert.equal(p!.outcome, 'create');
  assert.equal(p!.ownership, 'add');
  assert.deepEqual(types(p!.actions), ['build', 'set', 'enable']);
  assert.deepEqual(p!.actions[0], {
    type: 'build',
    context: CONTEXT,
    digest: DIGEST,
    reason: 'not installed',
  });
});

test('built from the same context: nothing to do, or only the in-place changes', () => {
  const owned = inventory([NAME], { [NAME]: { digest: DIGEST } });
  const [same] = plan([built()], [installed({ reference: NAME })], owned, contextFacts(), opts());
  assert.equal(same!.outcome, 'unchanged');
  const [disabled] = plan(
    [built()],
    [installed({ reference: NAME, enabled: false })],
    owned,
    contextFacts(),
    opts(),
  );
  assert.deepEqual(types(disabled!.actions), ['enable']);
});

test('a changed context rebuilds: disable, remove, build, settings, enable', () => {
  const owned = inventory([NAME], { [NAME]: { digest: DIGEST } });
  const [p] = plan(
    [built()],
    [installed({ reference: NAME })],
    owned,
    contextFacts({ digest: CHANGED }),
    opts(),
  );
  assert.equal(p!.outcome, 'configure');
  assert.equal(p!.ownership, 'keep');
  assert.deepEqual(types(p!.actions), ['disable', 'remove', 'build', 'set', 'enable']);
  const build = p!.actions.find((a) => a.type === 'build');
  assert.ok(build?.type === 'build' && build.digest === CHANGED);
  assert.match(build.reason, /context changed \(111111111111 -> 222222222222\)/);
});

test('a rebuild of a plugin in use waits unless inUse is Force', () => {
  const owned = inventory([NAME], { [NAME]: { digest: DIGEST } });
  const busy = installed({ reference: NAME, inUse: true });
  const [wait] = plan([built()], [busy], owned, contextFacts({ digest: CHANGED }), opts());
  assert.equal(wait!.outcome, 'blocked');
  assert.deepEqual(
    wait!.actions.map((a) => (a.type === 'blocked' ? a.code : a.type)),
    ['PLUGIN_IN_USE'],
  );
  const [force] = plan([built({ inUse: 'Force' })], [busy], owned, contextFacts({ digest: CHANGED }), opts());
  assert.deepEqual(types(force!.actions), ['disable', 'remove', 'build', 'set', 'enable']);
});

test('grants that differ from what the context asks for stall before anything is built', () => {
  const asks = [...privs(), { name: 'capabilities', description: '', value: ['CAP_SYS_ADMIN'] }];
  const [p] = plan([built()], [], inventory(), contextFacts({ privileges: asks }), opts());
  assert.equal(p!.outcome, 'blocked');
  const [action] = p!.actions;
  assert.ok(action?.type === 'blocked');
  assert.equal(action.code, 'PRIVILEGES_MISMATCH');
  assert.equal(action.kind, 'stalled');
  assert.match(action.reason, /the context \/repo\/plugins\/vol asks for .*CAP_SYS_ADMIN/);
  const [all] = plan(
    [built({ privileges: 'all' })],
    [],
    inventory(),
    contextFacts({ privileges: asks }),
    opts(),
  );
  assert.deepEqual(types(all!.actions), ['build', 'enable']);
});

test('an unreadable context stalls with its own code; one not read yet is transient', () => {
  const unreadable = new PlugctlError(
    'CONTEXT_INVALID',
    'plugin context /repo/plugins/vol: has no config.json',
    {
      kind: 'stalled',
    },
  );
  const [bad] = plan([built()], [], inventory(), contextFacts(unreadable), opts());
  assert.deepEqual(bad!.actions, [
    { type: 'blocked', kind: 'stalled', code: 'CONTEXT_INVALID', reason: unreadable.message },
  ]);
  const [unknown] = plan([built()], [], inventory(), { remotes: new Map() }, opts());
  assert.ok(unknown!.actions[0]?.type === 'blocked' && unknown!.actions[0].kind === 'transient');
});

test('a plugin of that name that plugctl does not own is a conflict, never replaced', () => {
  const [p] = plan([built()], [installed({ reference: NAME })], inventory(), contextFacts(), opts());
  assert.equal(p!.ownership, 'none');
  assert.ok(p!.actions[0]?.type === 'blocked' && p!.actions[0].code === 'NAME_CONFLICT');
});

test('owned but with no recorded build (e.g. it was pulled before): rebuilt from the context', () => {
  const owned = inventory([NAME], { [NAME]: { digest: 'sha256:' + 'd'.repeat(64) } });
  const [p] = plan(
    [built({ enabled: false })],
    [installed({ enabled: false })],
    owned,
    contextFacts(),
    opts(),
  );
  assert.deepEqual(types(p!.actions), ['remove', 'build', 'set']);
});
