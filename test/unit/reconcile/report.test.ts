// What a reconcile tells onReconciled, mapped to events (Kubernetes mode records them on the
// DockerPlugin): one Normal event for the most significant change, one Warning per failure with its
// code as reason, settings named and never valued.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SecretValue } from '../../../controller/api/secrets.ts';
import type { StepResult } from '../../../controller/reconcile/apply.ts';
import type { Action } from '../../../controller/reconcile/plan.ts';
import { eventsOf, restartEvent, settingNames } from '../../../controller/reconcile/report.ts';
import type { ReconcileReport } from '../../../controller/reconcile/report.ts';

const PLAIN = 'hunter2-very-secret';
const SECRET = new SecretValue(PLAIN, Buffer.alloc(32, 1)).derive((v) => `TOKEN=${v}`, 'TOKEN=<secret>');
const DIGEST = `sha256:${'a'.repeat(64)}`;

const pull: Action = {
  type: 'pull',
  remote: 'r.example/vol:1.0',
  digest: DIGEST,
  privileges: [],
  reason: 'not installed',
};
const upgrade: Action = {
  type: 'upgrade',
  remote: 'r.example/vol:2.0',
  digest: DIGEST,
  privileges: [],
  reason: 'remote changed',
};
const set: Action = {
  type: 'set',
  changes: ['GREETING=hello', SECRET, 'data.source=/srv'],
  declared: { env: { GREETING: 'hello' } },
  reason: 'settings differ',
};
const enable: Action = { type: 'enable', timeoutSeconds: 30, reason: 'declared enabled' };
const disable: Action = { type: 'disable', force: false, reason: 'to change settings' };
const remove: Action = { type: 'remove', force: false, reason: 'no longer declared for this host' };

const ok = (action: Action): StepResult => ({ action, ok: true });
function report(steps: StepResult[], failure?: ReconcileReport['failure']): ReconcileReport {
  return { key: 'vol', plugin: 'vol:1.0', steps, ...(failure !== undefined ? { failure } : {}) };
}

describe('eventsOf', () => {
  test('an install is one Pulled event naming the reference, digest and steps', () => {
    const events = eventsOf(report([ok(pull), ok(set), ok(enable)]));
    assert.equal(events.length, 1);
    assert.equal(events[0]?.type, 'Normal');
    assert.equal(events[0]?.reason, 'Pulled');
    assert.equal(events[0]?.action, 'Pull');
    assert.match(events[0]!.note, /^pulled vol:1\.0 from r\.example\/vol:1\.0@sha256:a{64}/);
    assert.match(events[0]!.note, /pull, set GREETING TOKEN data\.source, enable/);
  });

  test('a settings change is Reconfigured and names the settings, never a value', () => {
    const [event] = eventsOf(report([ok(disable), ok(set), ok(enable)]));
    assert.equal(event?.reason, 'Reconfigured');
    assert.equal(event?.action, 'Configure');
    assert.match(event!.note, /GREETING, TOKEN, data\.source/);
    assert.ok(!event!.note.includes(PLAIN));
    assert.ok(!event!.note.includes('hello'), 'no plain value either');
    assert.ok(!event!.note.includes('/srv'));
  });

  test('upgrades, removals, enables and disables each name their action', () => {
    const reasons = [
      [ok(disable), ok(upgrade), ok(set), ok(enable)],
      [ok(disable), ok(remove)],
      [ok(enable)],
      [ok(disable)],
    ].map((steps) => eventsOf(report(steps)).map((e) => `${e.reason}/${e.action}`));
    assert.deepEqual(reasons, [
      ['Upgraded/Upgrade'],
      ['Removed/Remove'],
      ['Enabled/Enable'],
      ['Disabled/Disable'],
    ]);
  });

  test('a no-op reconcile gives no event', () => {
    assert.deepEqual(eventsOf(report([ok({ type: 'noop', reason: 'converged' })])), []);
  });

  test('a stall is a Warning with its code as reason, after the change that did happen', () => {
    const events = eventsOf(
      report([ok(pull), { action: enable, ok: false, error: 'boom' }], {
        kind: 'stalled',
        code: 'ENABLE_FAILED',
        message: 'enable failed: boom',
      }),
    );
    assert.deepEqual(
      events.map((e) => [e.type, e.reason, e.action]),
      [
        ['Normal', 'Pulled', 'Pull'],
        ['Warning', 'ENABLE_FAILED', 'Enable'],
      ],
    );
    assert.equal(events[1]?.note, 'enable failed: boom');
  });

  test('a blocked plan is a Warning about the reconcile; the same stall gives the same event (one series)', () => {
    const failure = { kind: 'stalled', code: 'PRIVILEGES_MISMATCH', message: 'privileges differ' } as const;
    const first = eventsOf(report([], failure));
    assert.deepEqual(first, [
      { type: 'Warning', reason: 'PRIVILEGES_MISMATCH', action: 'Reconcile', note: 'privileges differ' },
    ]);
    assert.deepEqual(eventsOf(report([], failure)), first);
  });

  test('waiting for a rollout slot gives no event: it is asked again every few seconds', () => {
    const failure = {
      kind: 'waiting',
      code: 'ROLLOUT_WAITING',
      message: 'waiting for a rollout slot: ... held by node-a',
    } as const;
    assert.deepEqual(eventsOf(report([], failure)), []);
  });

  test('a rolled-back upgrade is a Rollback warning, not an Upgraded event', () => {
    const events = eventsOf(
      report([ok(disable), ok(upgrade), { action: enable, ok: false, error: 'x' }], {
        kind: 'stalled',
        code: 'UPGRADE_ROLLED_BACK',
        message: 'rolled back to r.example/vol:1.0',
      }),
    );
    assert.deepEqual(
      events.map((e) => [e.type, e.reason, e.action]),
      [['Warning', 'UPGRADE_ROLLED_BACK', 'Rollback']],
    );
  });
});

describe('restartEvent', () => {
  test('a Warning Unresponsive/Restart with the probe error', () => {
    const event = restartEvent('vol:1.0', 'no answer within 1000 ms');
    assert.equal(event.type, 'Warning');
    assert.equal(event.reason, 'Unresponsive');
    assert.equal(event.action, 'Restart');
    assert.match(event.note, /vol:1\.0 did not answer Plugin\.Activate \(no answer within 1000 ms\)/);
  });
});

describe('settingNames', () => {
  test('without known changes, the declared names: env, args, mounts, devices', () => {
    assert.deepEqual(
      settingNames({
        type: 'set',
        declared: {
          env: { A: '1', B: SECRET },
          args: ['-v'],
          mounts: { data: '/x' },
          devices: { d: '/dev/x' },
        },
        reason: 'after pull',
      }),
      ['env A', 'env B', 'args', 'mount data', 'device d'],
    );
  });
});
