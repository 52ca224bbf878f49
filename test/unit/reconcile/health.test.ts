/**
 * The health monitor's bookkeeping with a manual clock and a prober whose answers the test sets:
 * probes on the period, Ready only after a pass and until failureThreshold failures, the change
 * callback only when Ready or "restart due" changes, the restart backoff (10 s doubling to 5 min,
 * forgotten after answering long enough), and results of probes from before a restart dropped.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HealthMonitor, type HealthSettings } from '../../../controller/reconcile/health.ts';
import { PlugctlError } from '../../../controller/errors.ts';
import type { InstalledPlugin, PluginProber } from '../../../controller/store/store.ts';
import { FakeClock } from '../runtime/fake-clock.ts';
import { installed } from './fixtures.ts';

const SETTINGS: HealthSettings = { enabled: true, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 };

class ScriptedProber implements PluginProber {
  answering = true;
  calls = 0;
  async activate(_plugin: InstalledPlugin, _timeoutMs: number): Promise<void> {
    this.calls++;
    if (!this.answering) throw new PlugctlError('PLUGIN_UNRESPONSIVE', 'no answer within 2000 ms');
  }
}

/** Lets the probe promises settle after the clock fired their timers. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

function setup() {
  const clock = new FakeClock(1_000_000);
  const prober = new ScriptedProber();
  const changes: string[] = [];
  const failures: string[] = [];
  const monitor = new HealthMonitor({
    prober,
    clock,
    onChange: (key) => changes.push(key),
    onProbeFailure: (key) => failures.push(key),
  });
  const tick = async (seconds: number) => {
    for (let i = 0; i < seconds; i++) {
      clock.advance(1000);
      await settle();
    }
  };
  return { clock, prober, monitor, changes, failures, tick };
}

describe('HealthMonitor', () => {
  it('is Ready after a passing probe and probes again every period', async () => {
    const { monitor, prober, tick } = setup();
    monitor.track('vol', installed(), SETTINGS);
    assert.equal(monitor.view('vol')?.unknown, true);
    assert.equal(monitor.view('vol')?.ready, false);
    const view = await monitor.probeNow('vol');
    assert.equal(view?.ready, true);
    const before = prober.calls;
    await tick(30);
    assert.equal(prober.calls - before, 3, 'one probe per 10 s period');
    monitor.stop();
  });

  it('stays Ready below failureThreshold, then asks for a restart and says so once', async () => {
    const { monitor, prober, changes, failures, tick } = setup();
    monitor.track('vol', installed(), SETTINGS);
    await monitor.probeNow('vol');
    prober.answering = false;
    await tick(10);
    await tick(10);
    assert.equal(monitor.view('vol')?.ready, true, 'two failures of three: still Ready');
    assert.deepEqual(changes, []);
    await tick(10);
    const view = monitor.view('vol');
    assert.equal(view?.ready, false);
    assert.equal(view?.restartDue, true);
    assert.match(view?.lastError ?? '', /no answer within 2000 ms/);
    assert.deepEqual(changes, ['vol'], 'the controller is told once, when it matters');
    assert.equal(failures.length, 3);
    monitor.stop();
  });

  it('backs restarts off 10 s doubling to 5 min, and forgets them after answering 5 min', async () => {
    const { monitor, clock, prober, tick } = setup();
    monitor.track('vol', installed(), SETTINGS);
    assert.equal(monitor.restartDelay('vol'), 0);
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      monitor.restarting('vol');
      delays.push(monitor.restartDelay('vol'));
    }
    assert.deepEqual(delays, [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
    assert.equal(monitor.view('vol')?.restarts, 7);
    clock.advance(300_000);
    prober.answering = true;
    await monitor.probeNow('vol');
    assert.equal(monitor.view('vol')?.restarts, 0, 'answering 5 min after the last restart resets');
    assert.equal(monitor.restartDelay('vol'), 0);
    await tick(1);
    monitor.stop();
  });

  it('drops the result of a probe that started before a restart', async () => {
    const { monitor, prober } = setup();
    monitor.track('vol', installed(), SETTINGS);
    prober.answering = false;
    let release: () => void = () => undefined;
    prober.activate = () =>
      new Promise<void>((_, reject) => {
        release = () => reject(new Error('late failure'));
      });
    const pending = monitor.probeNow('vol');
    monitor.restarting('vol');
    release();
    await pending;
    assert.equal(monitor.view('vol')?.failures, 0);
    assert.equal(monitor.view('vol')?.unknown, true);
    monitor.stop();
  });

  it('starts over for another plugin ID and stops probing an untracked key', async () => {
    const { monitor, prober, tick } = setup();
    monitor.track('vol', installed(), SETTINGS);
    await monitor.probeNow('vol');
    monitor.track('vol', installed({ id: 'f'.repeat(64) }), SETTINGS);
    assert.equal(monitor.view('vol')?.unknown, true);
    monitor.untrack('vol');
    const calls = prober.calls;
    await tick(30);
    assert.equal(prober.calls, calls);
    assert.equal(monitor.view('vol'), undefined);
    assert.equal(monitor.tracked(), 0);
  });
});
