/**
 * One-shot apply's probe of the plugins it enabled, with a scripted prober and a manual clock: only
 * plugins enabled by this apply (with the health check on and no failure) are probed; a fast failure
 * is tried again within timeoutSeconds and an answer then makes it Ready; one that never answers is
 * Unresponsive with the last error, as a failure that makes apply exit non-zero; one plugctl cannot
 * reach from where it runs is left unchecked, without a failure.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PlugctlError } from '../../../controller/errors.ts';
import type { PluginResult } from '../../../controller/reconcile/apply.ts';
import { checkEnabledAnswer, type ReadyCheckDeps } from '../../../controller/reconcile/ready-check.ts';
import type { InstalledPlugin } from '../../../controller/store/store.ts';
import { desired, installed, KEY, NAME } from './fixtures.ts';

const HEALTH = { enabled: true, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 };

/** A store whose plugin answers from the `answerFrom`-th attempt on (never when undefined). */
function scripted(answerFrom: number | undefined, wedgedMs = 0) {
  let time = 0;
  const calls: { name: string; timeoutMs: number }[] = [];
  const deps: ReadyCheckDeps = {
    now: () => time,
    sleep: async (ms) => void (time += ms),
    store: {
      inspect: async (name: string) => installed({ name }),
      activate: async (plugin: InstalledPlugin, timeoutMs: number) => {
        calls.push({ name: plugin.name, timeoutMs });
        if (answerFrom !== undefined && calls.length >= answerFrom) return;
        if (wedgedMs > 0) {
          time += Math.min(wedgedMs, timeoutMs);
          throw new PlugctlError('PLUGIN_UNRESPONSIVE', `no answer within ${timeoutMs} ms`);
        }
        time += 1;
        throw new PlugctlError('PLUGIN_UNRESPONSIVE', 'nothing accepts connections on the socket');
      },
    },
  };
  return { deps, calls };
}

function enabled(overrides: Partial<PluginResult> = {}): PluginResult {
  return {
    key: KEY,
    name: NAME,
    outcome: 'create',
    steps: [
      { action: { type: 'pull', remote: 'r', digest: 'd', privileges: [], reason: 'x' }, ok: true },
      { action: { type: 'enable', timeoutSeconds: 30, reason: 'x' }, ok: true },
    ],
    ...overrides,
  };
}

describe('checkEnabledAnswer', () => {
  it('marks a plugin that answers at once Ready, with one probe', async () => {
    const { deps, calls } = scripted(1);
    const [result] = await checkEnabledAnswer([enabled()], [desired({ healthCheck: HEALTH })], deps);
    assert.deepEqual(result?.ready, { answered: true, attempts: 1, elapsedMs: 0 });
    assert.equal(result?.failure, undefined);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.timeoutMs, 2000);
  });

  it('tries a fast failure again within timeoutSeconds and is Ready when it answers then', async () => {
    const { deps, calls } = scripted(3);
    const [result] = await checkEnabledAnswer([enabled()], [desired({ healthCheck: HEALTH })], deps);
    assert.equal(result?.ready?.answered, true);
    assert.equal(result?.ready?.attempts, 3);
    assert.equal(calls.length, 3);
    assert.ok((result?.ready?.elapsedMs ?? 0) < 2000);
  });

  it('says Unresponsive with the last error when the plugin never answers, as a waiting failure', async () => {
    const { deps, calls } = scripted(undefined, 10_000);
    const [result] = await checkEnabledAnswer([enabled()], [desired({ healthCheck: HEALTH })], deps);
    assert.equal(result?.ready?.answered, false);
    // a wedged plugin uses the whole budget in its one attempt
    assert.equal(calls.length, 1);
    assert.equal(result?.failure?.code, 'PLUGIN_UNRESPONSIVE');
    assert.equal(result?.failure?.kind, 'waiting');
    assert.match(result?.failure?.message ?? '', /^Unresponsive: vol:latest .*no answer within 2000 ms/);
  });

  it('keeps trying a plugin that refuses until the budget is spent, then says why', async () => {
    const { deps, calls } = scripted(undefined);
    const [result] = await checkEnabledAnswer([enabled()], [desired({ healthCheck: HEALTH })], deps);
    assert.equal(result?.ready?.answered, false);
    assert.ok(calls.length >= 3 && calls.length <= 6, `${calls.length} attempts`);
    assert.ok((result?.ready?.elapsedMs ?? 0) <= 2000);
    assert.match(result?.failure?.message ?? '', /nothing accepts connections/);
  });

  it('stops at once, without a failure, when plugctl cannot reach the socket from where it runs', async () => {
    const { deps } = scripted(undefined);
    let calls = 0;
    deps.store.activate = async () => {
      calls++;
      throw new PlugctlError('PLUGIN_PROBE_UNAVAILABLE', '/run/docker/plugins is not visible to plugctl');
    };
    const [result] = await checkEnabledAnswer([enabled()], [desired({ healthCheck: HEALTH })], deps);
    assert.equal(calls, 1);
    assert.equal(result?.ready?.unchecked, true);
    assert.equal(result?.failure, undefined);
    assert.match(result?.ready?.error ?? '', /not visible/);
  });

  it('probes only plugins this apply enabled, with the check on and no failure', async () => {
    const { deps, calls } = scripted(1);
    const unchanged = enabled({ key: 'same', name: 'same:latest', outcome: 'unchanged', steps: [] });
    const off = enabled({ key: 'off', name: 'off:latest' });
    const failed = enabled({
      key: 'bad',
      name: 'bad:latest',
      failure: { kind: 'stalled', code: 'ENGINE_ERROR', message: 'no' },
    });
    const results = await checkEnabledAnswer(
      [unchanged, off, failed],
      [
        desired({ key: 'same', name: 'same:latest', healthCheck: HEALTH }),
        desired({ key: 'off', name: 'off:latest', healthCheck: { ...HEALTH, enabled: false } }),
        desired({ key: 'bad', name: 'bad:latest', healthCheck: HEALTH }),
      ],
      deps,
    );
    assert.equal(calls.length, 0);
    assert.deepEqual(results, [unchanged, off, failed]);
  });
});
