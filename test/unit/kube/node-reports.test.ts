/**
 * NodeReportSweeper's decisions with a scripted client (the real API server runs the same rules in
 * test/integration/kube/fleet.test.ts): a gone node with no agent pod loses its report, with the
 * report's resourceVersion as a precondition; one with an agent pod keeps it and is asked again only
 * after recheckMs; a refused pod list deletes nothing, now or later.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { KubeClient, KubeRequest } from '../../../controller/kube/client.ts';
import { KubeError } from '../../../controller/kube/errors.ts';
import { NodeReportSweeper } from '../../../controller/kube/node-reports.ts';
import { FakeClock } from '../runtime/fake-clock.ts';

function scripted(podsOn: Set<string>, refuse = false) {
  const calls: KubeRequest[] = [];
  const client = {
    request: async (req: KubeRequest) => {
      calls.push(req);
      if (req.method === 'GET') {
        if (refuse) throw new KubeError('KUBE_FORBIDDEN', 'pods is forbidden', { status: 403 });
        const node = String(req.query?.['fieldSelector']).replace('spec.nodeName=', '');
        return { metadata: {}, items: podsOn.has(node) ? [{ metadata: { name: `agent-${node}` } }] : [] };
      }
      return {};
    },
  } as unknown as KubeClient;
  return { client, calls };
}

const report = (name: string) => ({ node: name, report: { metadata: { name, resourceVersion: '7' } } });

test('deletes the report of a gone node with no agent pod, and keeps one whose agent pod is there', async () => {
  const clock = new FakeClock(1_000);
  const { client, calls } = scripted(new Set(['down']));
  const sweeper = new NodeReportSweeper({
    client,
    namespace: 'ns',
    clock,
    logger: pino({ level: 'silent' }),
    recheckMs: 60_000,
  });
  sweeper.sweep([report('down'), report('gone')]);
  await sweeper.idle();
  const deletes = calls.filter((c) => c.method === 'DELETE');
  assert.deepEqual(
    deletes.map((c) => c.path),
    ['/apis/plugctl.dev/v1alpha1/dockerpluginnodes/gone'],
  );
  assert.equal(
    (deletes[0]?.body as { preconditions: { resourceVersion?: string } }).preconditions.resourceVersion,
    '7',
  );
  const list = calls.find((c) => c.method === 'GET');
  assert.equal(
    list?.query?.['labelSelector'],
    'app.kubernetes.io/name=plugctl,app.kubernetes.io/component=agent',
  );
  assert.equal(sweeper.removed, 1);

  calls.length = 0;
  sweeper.sweep([report('down')]);
  await sweeper.idle();
  assert.equal(calls.length, 0, 'not asked again before recheckMs');
  clock.advance(60_000);
  sweeper.sweep([report('down')]);
  await sweeper.idle();
  assert.equal(calls.length, 1);
});

test('a refused pod list deletes nothing, and stops asking', async () => {
  const { client, calls } = scripted(new Set(), true);
  const sweeper = new NodeReportSweeper({
    client,
    namespace: 'ns',
    clock: new FakeClock(0),
    logger: pino({ level: 'silent' }),
  });
  sweeper.sweep([report('gone')]);
  await sweeper.idle();
  sweeper.sweep([report('gone')]);
  await sweeper.idle();
  assert.equal(calls.filter((c) => c.method === 'DELETE').length, 0);
  assert.equal(calls.length, 1);
});
