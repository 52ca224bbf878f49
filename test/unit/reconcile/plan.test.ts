// plan() is pure: every case states the inputs (declared, installed, owned, remote facts, options)
// and the resulting plan per plugin. Actions are rendered compactly so a row reads like `plugctl diff`:
//   set[GREETING=hi]  a set with known engine-syntax changes      set  a set resolved after pull/upgrade
//   disable(force)    a forced disable                            blocked:stalled  a blocked step and its kind
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PlugctlError, SpecError } from '../../../controller/errors.ts';
import { isConverged, plan, sameRemote } from '../../../controller/reconcile/plan.ts';
import type {
  Action,
  Outcome,
  PlanOptions,
  PluginPlan,
  RemoteFacts,
} from '../../../controller/reconcile/plan.ts';
import type { DesiredPlugin } from '../../../controller/reconcile/desired.ts';
import type { Inventory } from '../../../controller/reconcile/inventory.ts';
import type { PluginPrivilege } from '../../../controller/api/types.ts';
import type { InstalledPlugin } from '../../../controller/store/store.ts';
import {
  KEY,
  NAME,
  opts,
  REMOTE,
  REMOTE_V2,
  desired,
  facts,
  installed,
  inventory,
  noFacts,
  privs,
} from './fixtures.ts';

const BUSYBOX = 'docker.io/library/busybox:latest';
const PINNED = `docker.io/library/busybox@sha256:${'c'.repeat(64)}`;

/** A compact, order-preserving rendering of one action (see the header comment). */
function render(action: Action): string {
  switch (action.type) {
    case 'set':
      return action.changes === undefined ? 'set' : `set[${action.changes.join(', ')}]`;
    case 'disable':
    case 'remove':
      return action.force ? `${action.type}(force)` : action.type;
    case 'blocked':
      return `blocked:${action.kind}`;
    default:
      return action.type;
  }
}

/** The first action of `type` in a plan; fails the test when there is none. */
function actionOf<T extends Action['type']>(p: PluginPlan, type: T): Extract<Action, { type: T }> {
  const found = p.actions.find((a): a is Extract<Action, { type: T }> => a.type === type);
  assert.ok(found, `plan for ${p.name} has no ${type} action`);
  return found;
}

interface Expected {
  name: string;
  /** defaults to the declaration's key for declared plugins; required knowledge for prunes */
  key?: string;
  outcome: Outcome;
  /** omitted where the value carries no meaning (e.g. an install that is blocked before it starts) */
  ownership?: PluginPlan['ownership'];
  actions: string[];
  /** fragments that must all appear in the plan's reasons */
  reasons?: string[];
  /** extra assertions on fields the rendering leaves out */
  check?: (p: PluginPlan) => void;
}

interface Row {
  name: string;
  desired: DesiredPlugin[];
  actual: InstalledPlugin[];
  inventory: Inventory;
  facts: RemoteFacts;
  options?: PlanOptions;
  expect: Expected[];
}

const pullPrivileges =
  (expected: PluginPrivilege[]) =>
  (p: PluginPlan): void =>
    assert.deepEqual(actionOf(p, 'pull').privileges, expected);

const rows: Row[] = [
  // ---- install ----------------------------------------------------------------------------------
  {
    name: 'missing -> pull, enable',
    desired: [desired({ enableTimeoutSeconds: 90 })],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [
      {
        name: NAME,
        outcome: 'create',
        ownership: 'add',
        actions: ['pull', 'enable'],
        reasons: ['not installed'],
        check: (p) => {
          const pull = actionOf(p, 'pull');
          assert.equal(pull.remote, REMOTE);
          assert.deepEqual(pull.privileges, privs());
          assert.equal(actionOf(p, 'enable').timeoutSeconds, 90);
        },
      },
    ],
  },
  {
    name: 'missing with settings -> pull, set (resolved after the pull), enable',
    desired: [desired({ settings: { env: { GREETING: 'hi' }, args: ['-v'] } })],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [
      {
        name: NAME,
        outcome: 'create',
        ownership: 'add',
        actions: ['pull', 'set', 'enable'],
        check: (p) =>
          assert.deepEqual(actionOf(p, 'set').declared, { env: { GREETING: 'hi' }, args: ['-v'] }),
      },
    ],
  },
  {
    name: 'missing with enabled:false -> pull only',
    desired: [desired({ enabled: false })],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [{ name: NAME, outcome: 'create', ownership: 'add', actions: ['pull'] }],
  },
  {
    name: 'missing with enabled:false and settings -> pull, set',
    desired: [desired({ enabled: false, settings: { mounts: { state: '/x' } } })],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [{ name: NAME, outcome: 'create', ownership: 'add', actions: ['pull', 'set'] }],
  },
  {
    name: 'missing with settings that declare nothing (empty maps) -> no set',
    desired: [desired({ settings: { env: {}, mounts: {}, devices: {} } })],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [{ name: NAME, outcome: 'create', ownership: 'add', actions: ['pull', 'enable'] }],
  },

  // ---- converged, enable and disable --------------------------------------------------------------
  {
    name: 'already converged -> unchanged',
    desired: [desired()],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      { name: NAME, outcome: 'unchanged', ownership: 'keep', actions: ['noop'], reasons: ['up to date'] },
    ],
  },
  {
    name: 'converged with every kind of setting declared and applied -> unchanged',
    desired: [
      desired({
        settings: {
          env: { GREETING: 'hi' },
          args: ['a', 'b'],
          mounts: { state: '/x' },
          devices: { fuse: '/dev/fuse' },
        },
      }),
    ],
    actual: [
      installed({
        settings: { env: { GREETING: 'hi', DEBUG: '0' }, args: ['a', 'b'], mounts: { state: '/x' } },
      }),
    ],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'unchanged', ownership: 'keep', actions: ['noop'] }],
  },
  {
    name: 'converged while disabled and declared disabled -> unchanged',
    desired: [desired({ enabled: false })],
    actual: [installed({ enabled: false })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'unchanged', ownership: 'keep', actions: ['noop'] }],
  },
  {
    name: 'disabled but wanted enabled -> enable',
    desired: [desired({ enableTimeoutSeconds: 5 })],
    actual: [installed({ enabled: false })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'keep',
        actions: ['enable'],
        reasons: ['spec.enabled is true but the plugin is disabled'],
        check: (p) => assert.equal(actionOf(p, 'enable').timeoutSeconds, 5),
      },
    ],
  },
  {
    name: 'enabled but wanted disabled, inUse Wait -> disable without force',
    desired: [desired({ enabled: false })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'keep',
        actions: ['disable'],
        reasons: ['spec.enabled is false'],
      },
    ],
  },
  {
    name: 'enabled but wanted disabled, inUse Force -> disable with force',
    desired: [desired({ enabled: false, inUse: 'Force' })],
    actual: [installed({ inUse: true })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'configure', ownership: 'keep', actions: ['disable(force)'] }],
  },
  {
    name: 'enabled, in use, wanted disabled, inUse Wait -> blocked waiting',
    desired: [desired({ enabled: false })],
    actual: [installed({ inUse: true })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        ownership: 'keep',
        actions: ['blocked:waiting'],
        reasons: ['spec.enabled is false', 'in use', 'inUse: Force'],
      },
    ],
  },
  {
    name: 'in-use state unknown counts as not in use -> plain disable',
    desired: [desired({ enabled: false })],
    actual: [installed({ inUse: undefined })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'configure', ownership: 'keep', actions: ['disable'] }],
  },

  // ---- settings ---------------------------------------------------------------------------------
  {
    name: 'env differs on an enabled plugin -> disable, set, enable',
    desired: [desired({ settings: { env: { GREETING: 'hi' } } })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'keep',
        actions: ['disable', 'set[GREETING=hi]', 'enable'],
        reasons: ['env GREETING "hello" -> "hi"', 'was enabled before the change'],
        check: (p) => assert.deepEqual(actionOf(p, 'set').declared, { env: { GREETING: 'hi' } }),
      },
    ],
  },
  {
    name: 'env differs on a disabled plugin wanted enabled -> set, enable',
    desired: [desired({ settings: { env: { DEBUG: '1' } } })],
    actual: [installed({ enabled: false })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'keep',
        actions: ['set[DEBUG=1]', 'enable'],
        reasons: ['spec.enabled is true'],
      },
    ],
  },
  {
    name: 'env differs on a disabled plugin wanted disabled -> set only',
    desired: [desired({ enabled: false, settings: { env: { DEBUG: '1' } } })],
    actual: [installed({ enabled: false })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'configure', ownership: 'keep', actions: ['set[DEBUG=1]'] }],
  },
  {
    name: 'env differs on an enabled plugin wanted disabled -> disable, set (no enable)',
    desired: [desired({ enabled: false, settings: { env: { DEBUG: '1' } } })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'configure', ownership: 'keep', actions: ['disable', 'set[DEBUG=1]'] }],
  },
  {
    name: 'env key removed from the document -> reverts to the config default',
    desired: [desired()],
    actual: [installed({ settings: { env: { GREETING: 'hi', DEBUG: '0' } } })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'keep',
        actions: ['disable', 'set[GREETING=hello]', 'enable'],
        reasons: ['env GREETING "hi" -> "hello"'],
      },
    ],
  },
  {
    name: 'args differ -> args=a b',
    desired: [desired({ settings: { args: ['a', 'b'] } })],
    actual: [installed({ enabled: false })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'configure', ownership: 'keep', actions: ['set[args=a b]', 'enable'] }],
  },
  {
    name: 'mount source differs -> state.source=/x',
    desired: [desired({ settings: { mounts: { state: '/x' } } })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'keep',
        actions: ['disable', 'set[state.source=/x]', 'enable'],
        reasons: ['mount state "/var/lib/vol" -> "/x"'],
      },
    ],
  },
  {
    name: 'several settings differ -> one set in config order: env, mounts, args',
    desired: [
      desired({ settings: { args: ['-v'], mounts: { state: '/x' }, env: { DEBUG: '1', GREETING: 'hi' } } }),
    ],
    actual: [installed({ enabled: false })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'keep',
        actions: ['set[GREETING=hi, DEBUG=1, state.source=/x, args=-v]', 'enable'],
      },
    ],
  },
  {
    name: 'device that is not settable declared with another path -> blocked stalled',
    desired: [desired({ settings: { devices: { fuse: '/dev/other' } } })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        ownership: 'keep',
        actions: ['blocked:stalled'],
        reasons: ['spec.settings cannot be applied', 'device fuse is not settable', '/dev/other'],
      },
    ],
  },
  {
    name: 'device that is not settable declared at its default -> unchanged',
    desired: [desired({ settings: { devices: { fuse: '/dev/fuse' } } })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'unchanged', ownership: 'keep', actions: ['noop'] }],
  },
  {
    name: 'unknown env key -> blocked stalled, naming the keys the config knows',
    desired: [desired({ settings: { env: { NOPE: '1' } } })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        ownership: 'keep',
        actions: ['blocked:stalled'],
        reasons: ['env NOPE', 'declares no such env', 'GREETING, DEBUG'],
      },
    ],
  },
  {
    name: 'argument with whitespace -> blocked stalled',
    desired: [desired({ settings: { args: ['--name', 'a b'] } })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        ownership: 'keep',
        actions: ['blocked:stalled'],
        reasons: ['"a b"', 'whitespace'],
      },
    ],
  },
  {
    name: 'in use + inUse Wait + settings change -> blocked waiting, nothing disabled',
    desired: [desired({ settings: { env: { GREETING: 'hi' } } })],
    actual: [installed({ inUse: true })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        ownership: 'keep',
        actions: ['blocked:waiting'],
        reasons: ['settings can only be changed while disabled', 'in use', 'spec.inUse is Wait'],
      },
    ],
  },
  {
    name: 'in use + inUse Force + settings change -> disable(force), set, enable',
    desired: [desired({ inUse: 'Force', settings: { env: { GREETING: 'hi' } } })],
    actual: [installed({ inUse: true })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'keep',
        actions: ['disable(force)', 'set[GREETING=hi]', 'enable'],
      },
    ],
  },

  // ---- upgrade ----------------------------------------------------------------------------------
  {
    name: 'remote differs (1.0 -> 2.0) on an enabled plugin -> disable, upgrade, set, enable',
    desired: [desired({ remote: REMOTE_V2 })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: facts({ [REMOTE_V2]: privs() }),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'keep',
        actions: ['disable', 'upgrade', 'set', 'enable'],
        reasons: [`installed from ${REMOTE}, declared ${REMOTE_V2}`, 'upgrade needs the plugin disabled'],
        check: (p) => {
          const upgrade = actionOf(p, 'upgrade');
          assert.equal(upgrade.remote, REMOTE_V2);
          assert.deepEqual(upgrade.privileges, privs());
          // After an upgrade the new config is unknown: set must be resolved by apply, never precomputed.
          assert.equal(actionOf(p, 'set').changes, undefined);
        },
      },
    ],
  },
  {
    name: 'remote differs on a disabled plugin declared disabled -> upgrade, set',
    desired: [desired({ remote: REMOTE_V2, enabled: false })],
    actual: [installed({ enabled: false })],
    inventory: inventory([NAME]),
    facts: facts({ [REMOTE_V2]: privs() }),
    expect: [{ name: NAME, outcome: 'configure', ownership: 'keep', actions: ['upgrade', 'set'] }],
  },
  {
    name: 'remote differs on a disabled plugin declared enabled -> upgrade, set, enable',
    desired: [desired({ remote: REMOTE_V2 })],
    actual: [installed({ enabled: false })],
    inventory: inventory([NAME]),
    facts: facts({ [REMOTE_V2]: privs() }),
    expect: [{ name: NAME, outcome: 'configure', ownership: 'keep', actions: ['upgrade', 'set', 'enable'] }],
  },
  {
    name: 'remote differs, plugin in use, inUse Wait -> blocked waiting',
    desired: [desired({ remote: REMOTE_V2 })],
    actual: [installed({ inUse: true })],
    inventory: inventory([NAME]),
    facts: facts({ [REMOTE_V2]: privs() }),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        ownership: 'keep',
        actions: ['blocked:waiting'],
        reasons: ['upgrade needs the plugin disabled', 'in use'],
      },
    ],
  },
  {
    name: 'remote differs, plugin in use, inUse Force -> disable(force), upgrade, set, enable',
    desired: [desired({ remote: REMOTE_V2, inUse: 'Force' })],
    actual: [installed({ inUse: true })],
    inventory: inventory([NAME]),
    facts: facts({ [REMOTE_V2]: privs() }),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'keep',
        actions: ['disable(force)', 'upgrade', 'set', 'enable'],
      },
    ],
  },
  {
    name: 'remote differs, upgrade.policy TrackTag -> upgraded like OnSpecChange',
    desired: [desired({ remote: REMOTE_V2, upgradePolicy: 'TrackTag' })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: facts({ [REMOTE_V2]: privs() }),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'keep',
        actions: ['disable', 'upgrade', 'set', 'enable'],
      },
    ],
  },
  {
    name: 'remote differs, upgrade.policy Never -> noop with the reason, no facts needed',
    desired: [desired({ remote: REMOTE_V2, upgradePolicy: 'Never' })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'unchanged',
        ownership: 'keep',
        actions: ['noop'],
        reasons: [REMOTE, REMOTE_V2, 'upgrade.policy is Never'],
      },
    ],
  },
  {
    name: 'remote differs, upgrade.policy Never, settings differ -> in-place changes still planned',
    desired: [desired({ remote: REMOTE_V2, upgradePolicy: 'Never', settings: { env: { DEBUG: '1' } } })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'keep',
        actions: ['noop', 'disable', 'set[DEBUG=1]', 'enable'],
        reasons: ['upgrade.policy is Never', 'env DEBUG "0" -> "1"'],
      },
    ],
  },
  {
    name: 'remote differs, upgrade.policy Never, plugin disabled but wanted enabled -> noop, enable',
    desired: [desired({ remote: REMOTE_V2, upgradePolicy: 'Never' })],
    actual: [installed({ enabled: false })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'configure', ownership: 'keep', actions: ['noop', 'enable'] }],
  },
  {
    name: 'remote differs but it was not looked up -> blocked transient, nothing disabled',
    desired: [desired({ remote: REMOTE_V2 })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: facts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        ownership: 'keep',
        actions: ['blocked:transient'],
        reasons: [REMOTE_V2, 'not been looked up'],
      },
    ],
  },
  {
    name: 'remote differs and the new version asks for more privileges -> blocked stalled, nothing disabled',
    desired: [desired({ remote: REMOTE_V2 })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: facts({ [REMOTE_V2]: [...privs(), { name: 'capabilities', value: ['CAP_SYS_ADMIN'] }] }),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        ownership: 'keep',
        actions: ['blocked:stalled'],
        reasons: ['privileges do not match', 'capabilities=[CAP_SYS_ADMIN]'],
      },
    ],
  },
  {
    name: 'same remote written differently (busybox vs docker.io/library/busybox:latest) -> no upgrade',
    desired: [desired({ name: 'busybox:latest', remote: BUSYBOX })],
    actual: [installed({ name: 'busybox:latest', reference: 'busybox' })],
    inventory: inventory(['busybox:latest']),
    facts: noFacts(),
    expect: [{ name: 'busybox:latest', outcome: 'unchanged', ownership: 'keep', actions: ['noop'] }],
  },
  {
    name: 'same remote written differently the other way round (index.docker.io) -> no upgrade',
    desired: [desired({ name: 'busybox:latest', remote: 'index.docker.io/library/busybox' })],
    actual: [installed({ name: 'busybox:latest', reference: BUSYBOX })],
    inventory: inventory(['busybox:latest']),
    facts: noFacts(),
    expect: [{ name: 'busybox:latest', outcome: 'unchanged', ownership: 'keep', actions: ['noop'] }],
  },
  {
    name: 'tag -> digest pin is a different remote -> upgrade',
    desired: [desired({ name: 'busybox:latest', remote: PINNED })],
    actual: [installed({ name: 'busybox:latest', reference: BUSYBOX })],
    inventory: inventory(['busybox:latest']),
    facts: facts({ [PINNED]: privs() }),
    expect: [
      {
        name: 'busybox:latest',
        outcome: 'configure',
        ownership: 'keep',
        actions: ['disable', 'upgrade', 'set', 'enable'],
        check: (p) => assert.equal(actionOf(p, 'upgrade').remote, PINNED),
      },
    ],
  },

  // ---- privileges -------------------------------------------------------------------------------
  {
    name: 'privileges granted in another order -> pull with the required list',
    desired: [desired({ privileges: [...privs()].reverse() })],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [
      {
        name: NAME,
        outcome: 'create',
        ownership: 'add',
        actions: ['pull', 'enable'],
        check: pullPrivileges(privs()),
      },
    ],
  },
  {
    name: 'privilege values in another order, descriptions omitted -> equal, pull',
    desired: [
      desired({
        privileges: [
          { name: 'network', value: ['host'] },
          { name: 'mount', value: ['/etc/vol', '/var/lib/vol'] },
        ],
      }),
    ],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [
      {
        name: NAME,
        outcome: 'create',
        ownership: 'add',
        actions: ['pull', 'enable'],
        check: pullPrivileges(privs()),
      },
    ],
  },
  {
    name: 'privilege mismatch: one missing -> blocked stalled, both lists in the message',
    desired: [desired({ privileges: [{ name: 'network', value: ['host'] }] })],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        actions: ['blocked:stalled'],
        reasons: [
          `${REMOTE} asks for network=[host], mount=[/var/lib/vol, /etc/vol]`,
          'spec.privileges grants network=[host].',
          'grantAllPrivileges',
        ],
      },
    ],
  },
  {
    name: 'privilege mismatch: one extra -> blocked stalled',
    desired: [desired({ privileges: [...privs(), { name: 'allow-all-devices', value: ['true'] }] })],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        actions: ['blocked:stalled'],
        reasons: ['asks for network=[host], mount=[/var/lib/vol, /etc/vol];', 'allow-all-devices=[true]'],
      },
    ],
  },
  {
    name: 'privilege mismatch: only the FIRST element differs (CVE-2026-33997) -> blocked stalled',
    desired: [
      desired({
        privileges: [
          { name: 'network', value: ['bridge'] },
          { name: 'mount', value: ['/var/lib/vol', '/etc/vol'] },
        ],
      }),
    ],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        actions: ['blocked:stalled'],
        reasons: [
          'asks for network=[host], mount=[/var/lib/vol, /etc/vol]',
          'grants network=[bridge], mount=[/var/lib/vol, /etc/vol]',
        ],
      },
    ],
  },
  {
    name: 'privilege mismatch: first element swapped for another privilege of the same count -> blocked',
    desired: [
      desired({
        privileges: [
          { name: 'device', value: ['/dev/fuse'] },
          { name: 'mount', value: ['/var/lib/vol', '/etc/vol'] },
        ],
      }),
    ],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [
      { name: NAME, outcome: 'blocked', actions: ['blocked:stalled'], reasons: ['device=[/dev/fuse]'] },
    ],
  },
  {
    name: 'privilege mismatch: one value of a privilege missing -> blocked',
    desired: [
      desired({
        privileges: [
          { name: 'network', value: ['host'] },
          { name: 'mount', value: ['/var/lib/vol'] },
        ],
      }),
    ],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        actions: ['blocked:stalled'],
        reasons: ['grants network=[host], mount=[/var/lib/vol]'],
      },
    ],
  },
  {
    name: 'nothing granted while the remote asks -> blocked, message says none',
    desired: [desired({ privileges: [] })],
    actual: [],
    inventory: inventory(),
    facts: facts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        actions: ['blocked:stalled'],
        reasons: ['spec.privileges grants none'],
      },
    ],
  },
  {
    name: 'remote needs no privileges but some are granted -> blocked, both lists named',
    desired: [desired()],
    actual: [],
    inventory: inventory(),
    facts: facts({ [REMOTE]: [] }),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        actions: ['blocked:stalled'],
        reasons: ['asks for none', 'grants network=[host]'],
      },
    ],
  },
  {
    name: 'no privileges asked and none granted -> pull with none',
    desired: [desired({ privileges: [] })],
    actual: [],
    inventory: inventory(),
    facts: facts({ [REMOTE]: [] }),
    expect: [
      {
        name: NAME,
        outcome: 'create',
        ownership: 'add',
        actions: ['pull', 'enable'],
        check: pullPrivileges([]),
      },
    ],
  },
  {
    name: 'grantAllPrivileges -> pull with the required list',
    desired: [desired({ privileges: 'all' })],
    actual: [],
    inventory: inventory(),
    facts: facts({ [REMOTE]: [{ name: 'capabilities', value: ['CAP_SYS_ADMIN'] }] }),
    expect: [
      {
        name: NAME,
        outcome: 'create',
        ownership: 'add',
        actions: ['pull', 'enable'],
        check: pullPrivileges([{ name: 'capabilities', value: ['CAP_SYS_ADMIN'] }]),
      },
    ],
  },

  // ---- remote facts -----------------------------------------------------------------------------
  {
    name: 'fetching facts failed with a plain Error -> blocked transient with its message',
    desired: [desired()],
    actual: [],
    inventory: inventory(),
    facts: facts({ [REMOTE]: new Error('registry answered 503 Service Unavailable') }),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        actions: ['blocked:transient'],
        reasons: ['registry answered 503 Service Unavailable'],
      },
    ],
  },
  {
    name: 'fetching facts failed with a stalled PlugctlError -> blocked stalled',
    desired: [desired()],
    actual: [],
    inventory: inventory(),
    facts: facts({
      [REMOTE]: new PlugctlError('DIGEST_UNSUPPORTED_BY_ENGINE', 'the engine cannot pull by digest', {
        kind: 'stalled',
      }),
    }),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        actions: ['blocked:stalled'],
        reasons: ['the engine cannot pull by digest'],
      },
    ],
  },
  {
    name: 'fetching facts failed with a waiting PlugctlError -> blocked waiting',
    desired: [desired()],
    actual: [],
    inventory: inventory(),
    facts: facts({
      [REMOTE]: new PlugctlError('REGISTRY_RATE_LIMITED', 'try again later', { kind: 'waiting' }),
    }),
    expect: [{ name: NAME, outcome: 'blocked', actions: ['blocked:waiting'], reasons: ['try again later'] }],
  },
  {
    name: 'facts missing for the declared remote -> blocked transient',
    desired: [desired()],
    actual: [],
    inventory: inventory(),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        actions: ['blocked:transient'],
        reasons: [REMOTE, 'not been looked up at its registry yet'],
      },
    ],
  },
  {
    name: 'facts present only for another remote -> blocked (facts are keyed by the declared remote)',
    desired: [desired()],
    actual: [],
    inventory: inventory(),
    facts: facts({ [REMOTE_V2]: privs() }),
    expect: [{ name: NAME, outcome: 'blocked', actions: ['blocked:transient'] }],
  },
  {
    name: 'grantAllPrivileges still needs the facts -> blocked transient without them',
    desired: [desired({ privileges: 'all' })],
    actual: [],
    inventory: inventory(),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'blocked', actions: ['blocked:transient'] }],
  },

  // ---- prune ------------------------------------------------------------------------------------
  {
    name: 'owned, no longer declared, enabled -> disable, remove, drop ownership',
    desired: [],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        key: KEY,
        outcome: 'delete',
        ownership: 'drop',
        actions: ['disable', 'remove'],
        reasons: ['no longer declared'],
        check: (p) => assert.equal(p.desired, undefined),
      },
    ],
  },
  {
    name: 'owned, no longer declared, disabled -> remove only',
    desired: [],
    actual: [installed({ enabled: false })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [{ name: NAME, key: KEY, outcome: 'delete', ownership: 'drop', actions: ['remove'] }],
  },
  {
    name: 'owned, no longer declared, already gone -> delete with a noop, drop ownership',
    desired: [],
    actual: [],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        key: KEY,
        outcome: 'delete',
        ownership: 'drop',
        actions: ['noop'],
        reasons: ['already gone'],
      },
    ],
  },
  {
    name: 'owned, no longer declared, in use (remembered policy Wait) -> blocked waiting, ownership kept',
    desired: [],
    actual: [installed({ inUse: true })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        key: KEY,
        outcome: 'blocked',
        ownership: 'keep',
        actions: ['blocked:waiting'],
        reasons: ['no longer declared', 'in use'],
      },
    ],
  },
  {
    name: 'owned, no longer declared, in use (remembered policy Force) -> disable(force), remove',
    desired: [],
    actual: [installed({ inUse: true })],
    inventory: inventory([NAME], { [NAME]: { inUse: 'Force' } }),
    facts: noFacts(),
    expect: [
      { name: NAME, key: KEY, outcome: 'delete', ownership: 'drop', actions: ['disable(force)', 'remove'] },
    ],
  },
  {
    name: 'prune key comes from the inventory, not from the plugin name',
    desired: [],
    actual: [installed({ enabled: false })],
    inventory: inventory([NAME], { [NAME]: { key: 'legacy-volume' } }),
    facts: noFacts(),
    expect: [{ name: NAME, key: 'legacy-volume', outcome: 'delete', ownership: 'drop', actions: ['remove'] }],
  },
  {
    name: 'unmanaged plugin not declared -> untouched, no plan at all',
    desired: [],
    actual: [installed({ name: 'someone/else:latest', reference: 'docker.io/someone/else:latest' })],
    inventory: inventory(),
    facts: noFacts(),
    expect: [],
  },
  {
    name: 'prune:false -> owned undeclared plugin kept unchanged',
    desired: [],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    options: opts({ prune: false }),
    expect: [
      {
        name: NAME,
        key: KEY,
        outcome: 'unchanged',
        ownership: 'keep',
        actions: ['noop'],
        reasons: ['pruning is off'],
      },
    ],
  },
  {
    name: 'prune:false and the owned plugin is already gone -> still kept unchanged',
    desired: [],
    actual: [],
    inventory: inventory([NAME]),
    facts: noFacts(),
    options: opts({ prune: false }),
    expect: [{ name: NAME, key: KEY, outcome: 'unchanged', ownership: 'keep', actions: ['noop'] }],
  },

  // ---- adoption ---------------------------------------------------------------------------------
  {
    name: 'unmanaged with the same name and remote, converged -> adopt, ownership add',
    desired: [desired()],
    actual: [installed()],
    inventory: inventory(),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'add',
        actions: ['adopt', 'noop'],
        reasons: ['plugctl takes ownership', 'up to date'],
      },
    ],
  },
  {
    name: 'unmanaged with the same remote written differently, disabled -> adopt, enable',
    desired: [desired()],
    actual: [installed({ reference: 'acme/vol:1.0', enabled: false })],
    inventory: inventory(),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'configure', ownership: 'add', actions: ['adopt', 'enable'] }],
  },
  {
    name: 'unmanaged with the same name and remote, settings differ -> adopt, disable, set, enable',
    desired: [desired({ settings: { env: { GREETING: 'hi' } } })],
    actual: [installed()],
    inventory: inventory(),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'configure',
        ownership: 'add',
        actions: ['adopt', 'disable', 'set[GREETING=hi]', 'enable'],
      },
    ],
  },
  {
    name: 'unmanaged with the same name and remote, in use, settings differ, Wait -> adopt then blocked',
    desired: [desired({ settings: { env: { GREETING: 'hi' } } })],
    actual: [installed({ inUse: true })],
    inventory: inventory(),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'blocked', actions: ['adopt', 'blocked:waiting'] }],
  },
  {
    name: 'unmanaged with the same name but another remote -> blocked stalled, never touched',
    desired: [desired()],
    actual: [installed({ reference: 'docker.io/someone/else:3' })],
    inventory: inventory(),
    facts: facts(),
    expect: [
      {
        name: NAME,
        outcome: 'blocked',
        ownership: 'none',
        actions: ['blocked:stalled'],
        reasons: ['docker.io/someone/else:3', 'not managed by plugctl', 'spec.alias'],
      },
    ],
  },
  {
    name: 'unmanaged with the same name but another remote, even with upgrade.policy Never -> blocked',
    desired: [desired({ upgradePolicy: 'Never' })],
    actual: [installed({ reference: 'docker.io/someone/else:3' })],
    inventory: inventory(),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'blocked', ownership: 'none', actions: ['blocked:stalled'] }],
  },

  // ---- suspend ----------------------------------------------------------------------------------
  {
    name: 'suspended and missing -> suspended, only a noop, no facts needed',
    desired: [desired({ suspend: true })],
    actual: [],
    inventory: inventory(),
    facts: noFacts(),
    expect: [
      {
        name: NAME,
        outcome: 'suspended',
        ownership: 'none',
        actions: ['noop'],
        reasons: ['spec.suspend is true'],
      },
    ],
  },
  {
    name: 'suspended, owned and drifted -> suspended, ownership kept',
    desired: [desired({ suspend: true, settings: { env: { GREETING: 'hi' } } })],
    actual: [installed({ enabled: false })],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'suspended', ownership: 'keep', actions: ['noop'] }],
  },
  {
    name: 'suspended while owned and installed -> not pruned, not touched',
    desired: [desired({ suspend: true })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: noFacts(),
    expect: [{ name: NAME, outcome: 'suspended', ownership: 'keep', actions: ['noop'] }],
  },

  // ---- several plugins --------------------------------------------------------------------------
  {
    name: 'declared plugins first in the given order, then prunes sorted by name',
    desired: [desired({ key: 'zz', name: 'zz:latest' }), desired({ key: 'aa', name: 'aa:latest' })],
    actual: [
      installed({ name: 'zz:latest' }),
      installed({ name: 'aa:latest' }),
      installed({ name: 'mid:latest', enabled: false }),
      installed({ name: 'alpha:latest', enabled: false }),
    ],
    inventory: inventory(['zz:latest', 'mid:latest', 'omega:latest', 'aa:latest', 'alpha:latest']),
    facts: noFacts(),
    expect: [
      { name: 'zz:latest', key: 'zz', outcome: 'unchanged', ownership: 'keep', actions: ['noop'] },
      { name: 'aa:latest', key: 'aa', outcome: 'unchanged', ownership: 'keep', actions: ['noop'] },
      { name: 'alpha:latest', key: 'alpha', outcome: 'delete', ownership: 'drop', actions: ['remove'] },
      { name: 'mid:latest', key: 'mid', outcome: 'delete', ownership: 'drop', actions: ['remove'] },
      { name: 'omega:latest', key: 'omega', outcome: 'delete', ownership: 'drop', actions: ['noop'] },
    ],
  },
  {
    name: 'one blocked plugin does not change the plans of the others',
    desired: [
      desired({ key: 'bad', name: 'bad:latest', privileges: [] }),
      desired({ key: 'good', name: 'good:latest' }),
    ],
    actual: [installed({ name: 'good:latest', enabled: false })],
    inventory: inventory(['good:latest']),
    facts: facts(),
    expect: [
      { name: 'bad:latest', key: 'bad', outcome: 'blocked', actions: ['blocked:stalled'] },
      { name: 'good:latest', key: 'good', outcome: 'configure', ownership: 'keep', actions: ['enable'] },
    ],
  },
  {
    name: 'alias changed: the new name is installed and the old owned name is pruned',
    desired: [desired({ name: 'vol2:latest' })],
    actual: [installed()],
    inventory: inventory([NAME]),
    facts: facts(),
    expect: [
      { name: 'vol2:latest', key: KEY, outcome: 'create', ownership: 'add', actions: ['pull', 'enable'] },
      { name: NAME, key: KEY, outcome: 'delete', ownership: 'drop', actions: ['disable', 'remove'] },
    ],
  },
];

describe('plan (table)', () => {
  test('the table covers at least 32 cases with unique names', () => {
    assert.ok(rows.length >= 32, `only ${rows.length} rows`);
    assert.equal(new Set(rows.map((r) => r.name)).size, rows.length);
  });

  for (const row of rows) {
    test(row.name, () => {
      const plans = plan(row.desired, row.actual, row.inventory, row.facts, row.options ?? opts());
      assert.deepEqual(
        plans.map((p) => p.name),
        row.expect.map((e) => e.name),
        'plugins planned, in order',
      );
      row.expect.forEach((expected, index) => {
        const p = plans[index]!;
        const declared = row.desired.find((d) => d.name === expected.name);
        assert.equal(p.key, expected.key ?? declared?.key, `${p.name}: key`);
        assert.deepEqual(p.actions.map(render), expected.actions, `${p.name}: actions`);
        assert.equal(p.outcome, expected.outcome, `${p.name}: outcome`);
        if (expected.ownership !== undefined)
          assert.equal(p.ownership, expected.ownership, `${p.name}: ownership`);
        if (declared !== undefined)
          assert.equal(p.desired, declared, `${p.name}: desired is the declaration served`);
        for (const action of p.actions)
          assert.ok(action.reason.length > 0, `${p.name}: ${action.type} has a reason`);
        const reasons = p.actions.map((a) => a.reason).join('\n');
        for (const fragment of expected.reasons ?? []) {
          assert.ok(
            reasons.includes(fragment),
            `${p.name}: reasons lack ${JSON.stringify(fragment)}:\n${reasons}`,
          );
        }
        expected.check?.(p);
      });
    });
  }
});

describe('plan (properties of the whole output)', () => {
  test('blocked plans never carry actions that change the host', () => {
    for (const row of rows) {
      for (const p of plan(row.desired, row.actual, row.inventory, row.facts, row.options ?? opts())) {
        if (p.outcome !== 'blocked') continue;
        const changing = p.actions.filter(
          (a) => a.type !== 'blocked' && a.type !== 'noop' && a.type !== 'adopt',
        );
        assert.deepEqual(changing, [], `${row.name}: ${p.name}`);
        assert.equal(p.actions.at(-1)?.type, 'blocked', `${row.name}: blocked is the last step`);
      }
    }
  });

  test('planning does not mutate its inputs', () => {
    // Errors are kept by identity (structuredClone would lose their class); everything else by value.
    const snapshot = (row: Row): unknown =>
      structuredClone({
        d: row.desired,
        a: row.actual,
        i: row.inventory,
        f: [...row.facts.remotes].map(([k, v]) => [k, v instanceof Error ? `error: ${v.message}` : v]),
      });
    for (const row of rows) {
      const before = snapshot(row);
      plan(row.desired, row.actual, row.inventory, row.facts, row.options ?? opts());
      assert.deepEqual(snapshot(row), before, row.name);
    }
  });

  test('the same inputs give the same plan; the order of installed plugins and inventory entries does not matter', () => {
    const d = [
      desired({ key: 'b', name: 'b:latest' }),
      desired({ key: 'a', name: 'a:latest', enabled: false }),
    ];
    const names = ['x:latest', 'c:latest', 'b:latest', 'q:latest', 'a:latest'];
    const actual = names.map((name) => installed({ name }));
    const first = plan(d, actual, inventory(names), facts(), opts());
    const second = plan(d, [...actual].reverse(), inventory([...names].reverse()), facts(), opts());
    assert.deepEqual(second, first);
    assert.deepEqual(
      first.map((p) => p.name),
      ['b:latest', 'a:latest', 'c:latest', 'q:latest', 'x:latest'],
    );
  });

  test('a SpecError from the facts (always stalled) blocks as stalled', () => {
    const [p] = plan(
      [desired()],
      [],
      inventory(),
      facts({ [REMOTE]: new SpecError('INVALID_REFERENCE', 'bad digest') }),
      opts(),
    );
    assert.deepEqual(p?.actions.map(render), ['blocked:stalled']);
  });

  test('prunes with the default options of the fixtures', () => {
    const [p] = plan([], [installed({ enabled: false })], inventory([NAME]), noFacts(), opts());
    assert.equal(p?.outcome, 'delete');
  });

  test('plans of several declarations are independent of each other', () => {
    const a = desired({ key: 'a', name: 'a:latest' });
    const b = desired({ key: 'b', name: 'b:latest', settings: { env: { DEBUG: '1' } } });
    const actual = [installed({ name: 'b:latest' })];
    const together = plan([a, b], actual, inventory(['b:latest']), facts(), opts());
    assert.deepEqual(together[0], plan([a], actual, inventory(['b:latest']), facts(), opts())[0]);
    assert.deepEqual(together[1], plan([b], actual, inventory(['b:latest']), facts(), opts())[0]);
  });
});

describe('plan idempotence: a second plan over the state the first one produces is all unchanged', () => {
  test('install with settings, plus a prune', () => {
    const d = [
      desired({ settings: { env: { GREETING: 'hi' }, args: ['-v'], mounts: { state: '/srv/vol' } } }),
    ];
    const before = plan(
      d,
      [installed({ name: 'old:latest', enabled: true })],
      inventory(['old:latest']),
      facts(),
      opts(),
    );
    assert.deepEqual(
      before.map((p) => [p.name, p.outcome, p.actions.map(render)]),
      [
        [NAME, 'create', ['pull', 'set', 'enable']],
        ['old:latest', 'delete', ['disable', 'remove']],
      ],
    );
    assert.equal(isConverged(before), false);

    // What the host looks like once apply ran both plans: the plugin pulled, set and enabled; the prune gone;
    // the inventory owning exactly the declared name.
    const after = [
      installed({
        settings: { env: { GREETING: 'hi', DEBUG: '0' }, args: ['-v'], mounts: { state: '/srv/vol' } },
      }),
    ];
    const again = plan(d, after, inventory([NAME]), noFacts(), opts());
    assert.deepEqual(
      again.map((p) => [p.name, p.outcome, p.actions.map(render)]),
      [[NAME, 'unchanged', ['noop']]],
    );
    assert.equal(isConverged(again), true);
  });

  test('upgrade 1.0 -> 2.0 with a settings change on an enabled plugin', () => {
    const d = [desired({ remote: REMOTE_V2, settings: { env: { DEBUG: '1' } } })];
    const before = plan(d, [installed()], inventory([NAME]), facts({ [REMOTE_V2]: privs() }), opts());
    assert.deepEqual(before[0]?.actions.map(render), ['disable', 'upgrade', 'set', 'enable']);

    const after = [installed({ reference: REMOTE_V2, settings: { env: { GREETING: 'hello', DEBUG: '1' } } })];
    const again = plan(d, after, inventory([NAME], { [NAME]: { remote: REMOTE_V2 } }), noFacts(), opts());
    assert.deepEqual(again[0]?.actions.map(render), ['noop']);
    assert.equal(isConverged(again), true);
  });

  test('adoption', () => {
    const d = [desired({ enabled: false })];
    const before = plan(d, [installed()], inventory(), noFacts(), opts());
    assert.deepEqual(before[0]?.actions.map(render), ['adopt', 'disable']);
    const again = plan(d, [installed({ enabled: false })], inventory([NAME]), noFacts(), opts());
    assert.equal(isConverged(again), true);
  });
});

describe('isConverged', () => {
  const converged = plan([desired()], [installed()], inventory([NAME]), noFacts(), opts());
  const suspended = plan([desired({ suspend: true })], [], inventory(), noFacts(), opts());
  const configure = plan([desired()], [installed({ enabled: false })], inventory([NAME]), noFacts(), opts());
  const create = plan([desired()], [], inventory(), facts(), opts());
  const blocked = plan([desired()], [], inventory(), noFacts(), opts());
  const deleted = plan([], [], inventory([NAME]), noFacts(), opts());
  const kept = plan([], [installed()], inventory([NAME]), noFacts(), opts({ prune: false }));

  test('an empty plan is converged', () => assert.equal(isConverged([]), true));
  test('unchanged and suspended plans are converged', () => {
    assert.equal(isConverged([...converged, ...suspended, ...kept]), true);
  });
  for (const [label, plans] of [
    ['configure', configure],
    ['create', create],
    ['blocked', blocked],
    ['delete (even a noop prune)', deleted],
  ] as const) {
    test(`a ${label} plan is not converged`, () => {
      assert.equal(isConverged([...converged, ...plans]), false);
    });
  }
});

describe('sameRemote', () => {
  test('compares normalised references', () => {
    assert.equal(sameRemote('busybox', BUSYBOX), true);
    assert.equal(sameRemote('acme/vol:1.0', REMOTE), true);
    assert.equal(sameRemote(REMOTE, REMOTE_V2), false);
    assert.equal(sameRemote('busybox', PINNED), false);
  });
  test('unparsable references compare as plain strings', () => {
    assert.equal(sameRemote('Not A Ref', 'Not A Ref'), true);
    assert.equal(sameRemote('Not A Ref', 'not a ref'), false);
  });
});

describe('regressions: prototype-named keys', () => {
  // `d.name in inventory.plugins` also sees Object.prototype members, so a plugin named like one of them
  // counts as owned: an unmanaged plugin from another remote is then upgraded over instead of blocked.
  test('an unmanaged plugin named "constructor" from another remote is blocked, not upgraded', () => {
    const d = desired({ name: 'constructor' });
    const [p] = plan(
      [d],
      [installed({ name: 'constructor', reference: 'docker.io/evil/other:9' })],
      inventory(),
      facts(),
      opts(),
    );
    assert.equal(p?.outcome, 'blocked');
    assert.equal(p?.ownership, 'none');
  });
});
