import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import {
  createMetrics,
  forgetPluginSeries,
  recordDockerRequest,
  registerApiClientMetrics,
} from '../../../controller/observe/metrics.ts';
import { parseListen } from '../../../controller/observe/health.ts';

const run = promisify(execFile);

test('engine request paths are templated so labels stay bounded', async () => {
  const m = createMetrics();
  recordDockerRequest(m, 'GET', '/plugins', 200);
  recordDockerRequest(m, 'GET', '/plugins/a:latest/json', 200);
  recordDockerRequest(m, 'GET', '/plugins/127.0.0.1:5000/test/vol:1.0/json', 404);
  recordDockerRequest(m, 'POST', '/plugins/pull', 'ENGINE_UNREACHABLE');
  recordDockerRequest(m, 'DELETE', '/plugins/b:latest', 200);
  const text = await m.registry.metrics();
  assert.match(text, /path="\/plugins\/\{name\}\/json",outcome="200"\} 1/);
  assert.match(text, /path="\/plugins\/\{name\}\/json",outcome="404"\} 1/);
  assert.match(text, /method="DELETE",path="\/plugins\/\{name\}",outcome="200"\} 1/);
  assert.match(text, /plugctl_docker_api_errors_total\{code="404"\} 1/);
  assert.match(text, /plugctl_docker_api_errors_total\{code="ENGINE_UNREACHABLE"\} 1/);
  assert.doesNotMatch(text, /vol:1\.0/);
});

test('container inspects of the in-use lookup share one label set, whatever the container', async () => {
  const m = createMetrics();
  for (let i = 0; i < 100; i++)
    recordDockerRequest(m, 'GET', `/containers/${i.toString(16).padStart(64, '0')}/json`, 200);
  recordDockerRequest(m, 'GET', '/containers/json', 200);
  const text = await m.registry.metrics();
  const series = text.split('\n').filter((line) => line.startsWith('plugctl_docker_api_requests_total{'));
  assert.deepEqual(series, [
    'plugctl_docker_api_requests_total{method="GET",path="/containers/{id}/json",outcome="200"} 100',
    'plugctl_docker_api_requests_total{method="GET",path="/containers/json",outcome="200"} 1',
  ]);
});

test('parseListen', () => {
  assert.deepEqual(parseListen('127.0.0.1:9365'), { host: '127.0.0.1', port: 9365 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.throws(() => parseListen('9365'), /expected host:port/);
});

test('every plugctl metric, plugctl_build_info and the default metrics under their conventional names', async () => {
  const m = createMetrics({ version: '1.2.3' });
  m.reconciles.inc({ result: 'done' });
  m.reconcileDuration.observe(0.02);
  m.queueDepth.set(3);
  m.plugins.inc({ state: 'ready' });
  recordDockerRequest(m, 'GET', '/plugins', 500);
  const text = await m.registry.metrics();
  for (const series of [
    /^plugctl_reconciles_total\{result="done"\} 1$/m,
    /^plugctl_reconcile_duration_seconds_bucket\{le="0\.05"\} 1$/m,
    /^plugctl_reconcile_duration_seconds_count 1$/m,
    /^plugctl_queue_depth 3$/m,
    /^plugctl_plugins\{state="ready"\} 1$/m,
    /^plugctl_docker_api_requests_total\{method="GET",path="\/plugins",outcome="500"\} 1$/m,
    /^plugctl_docker_api_errors_total\{code="500"\} 1$/m,
    new RegExp(
      `^plugctl_build_info\\{version="1\\.2\\.3",node="${process.versions.node.replaceAll('.', '\\.')}"\\} 1$`,
      'm',
    ),
    /^process_start_time_seconds \d+$/m,
    /^process_cpu_user_seconds_total [\d.e-]+$/m,
    /^process_cpu_system_seconds_total [\d.e-]+$/m,
    /^process_cpu_seconds_total [\d.e-]+$/m,
    /^process_resident_memory_bytes [1-9]\d*$/m,
    /^process_open_fds [1-9]\d*$/m,
    /^nodejs_heap_size_total_bytes [1-9]\d*$/m,
    /^nodejs_heap_size_used_bytes [1-9]\d*$/m,
    /^nodejs_external_memory_bytes [1-9]\d*$/m,
    /^nodejs_eventloop_lag_seconds [\d.e-]+$/m,
    /^nodejs_version_info\{/m,
  ]) {
    assert.match(text, series);
  }
  assert.doesNotMatch(text, /^plugctl_(process|nodejs)_/m);
  const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((match) => match[1]);
  assert.equal(new Set(names).size, names.length);
});

test("the metrics and the health server do not load Node's bundled undici", async () => {
  const script = [
    `const { createMetrics } = await import(${JSON.stringify(new URL('../../../controller/observe/metrics.ts', import.meta.url).href)});`,
    `const { startHealthServer } = await import(${JSON.stringify(new URL('../../../controller/observe/health.ts', import.meta.url).href)});`,
    'const metrics = createMetrics();',
    "const server = await startHealthServer('127.0.0.1:0', { ready: () => true, registry: metrics.registry });",
    'await metrics.registry.metrics();',
    'await server.close();',
    'console.log(JSON.stringify(process.moduleLoadList.filter((m) => /deps\\/undici/.test(m))));',
    'process.exit(0);',
  ].join('\n');
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
  assert.deepEqual(JSON.parse(stdout), []);
});

test('a removed document leaves no probe-failure or restart series behind', async () => {
  const m = createMetrics();
  m.probeFailures.inc({ plugin: 'gone' });
  m.restarts.inc({ plugin: 'gone' });
  m.probeFailures.inc({ plugin: 'kept' });
  forgetPluginSeries(m, 'gone');
  const text = await m.registry.metrics();
  assert.doesNotMatch(text, /plugin="gone"/);
  assert.match(text, /plugctl_health_probe_failures_total\{plugin="kept"\} 1/);
});

test("the Kubernetes client's counters are read at each scrape", async () => {
  const m = createMetrics();
  const counts = { requests: 3, streams: 1, streamBytes: 2048 };
  registerApiClientMetrics(m.registry, () => counts);
  assert.match(await m.registry.metrics(), /^plugctl_kube_requests_total 3$/m);
  counts.requests = 10;
  counts.streamBytes = 4096;
  const text = await m.registry.metrics();
  assert.match(text, /^plugctl_kube_requests_total 10$/m);
  assert.match(text, /^plugctl_kube_watch_streams_total 1$/m);
  assert.match(text, /^plugctl_kube_watch_bytes_total 4096$/m);
});
